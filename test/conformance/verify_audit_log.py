#!/usr/bin/env python3
"""An independent verifier of Candor's access log, written from docs/audit-format.md alone.

It exists to show that the document is enough: a third party with this file, the database and the key they
hold can check the log without Candor's code. Section names in the comments are the document's.

    verify_audit_log.py DATABASE [--public-key KEY] [--from SEQ]

DATABASE is a SQLite file (a path, or Candor's `sqlite:PATH`) or a PostgreSQL URL, read through `psql`
(no driver needed). KEY is the trusted checkpoint key: base64 of its SPKI DER, PEM text, or a PEM file
(export's `publicKey`); without one, no checkpoint verifies. Prints `verified N records through SEQ (head
hash H)` and exits 0, or `access log broken at seq S: PROBLEM` on stderr and exits 1; 2 on a usage or read
error.

Ed25519 signatures are checked with the `cryptography` package when it is importable, else by
`openssl pkeyutl -verify -rawin`.
"""

import argparse
import base64
import binascii
import decimal
import hashlib
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from bisect import bisect_left

FORMAT = 'candor-audit/1'
CHECKPOINT_FORMAT = 'candor-checkpoint/1'
ZERO_HASH = '0' * 64
SPKI_PREFIX = bytes.fromhex('302a300506032b6570032100')

ENTRY_COLUMNS = ['seq', 'count', 'batch_id', 'at', 'request_id', 'actor_id', 'actor_name', 'actor_team', 'purpose',
                 'operation_name', 'subject_pseudonym', 'items', 'digests', 'committed_at']
BATCH_COLUMNS = ['id', 'first_seq', 'last_seq', 'prev_hash', 'hash', 'committed_at']
CHECKPOINT_COLUMNS = ['id', 'kind', 'seq', 'head_hash', 'at', 'key_id', 'signature', 'pruned_through_seq',
                      'predecessor_key', 'successor_key', 'successor_signature']


class NothingToVerify(Exception):
    """A --from past the head's next record: refused, as `candor audit verify` refuses it (exit 1)."""


class Problem(Exception):
    def __init__(self, seq, text):
        super().__init__(text)
        self.seq = seq
        self.text = text


# ---- JavaScript's JSON.stringify, which every digest, signature and sealed `items` text is defined by ----

def js_stringify(value):
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, (int, float)):
        return js_number(float(value)) if isinstance(value, float) or abs(value) >= 2 ** 53 else str(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, list):
        return '[' + ','.join(js_stringify(element) for element in value) + ']'
    if isinstance(value, dict):
        return '{' + ','.join(js_string(key) + ':' + js_stringify(element) for key, element in value.items()) + '}'
    raise TypeError(f'not a JSON value: {value!r}')


SHORT_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'}


def js_string(text):
    # Python keeps a lone surrogate as one code point (json.loads of "\ud800"); JSON.stringify escapes it.
    out = ['"']
    for char in text:
        code = ord(char)
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f'\\u{code:04x}')
        else:
            out.append(char)
    out.append('"')
    return ''.join(out)


def js_number(number):
    """Number::toString (ECMA-262): the shortest round-trip digits, which Python's repr also gives."""
    if not math.isfinite(number):
        return 'null'
    if number == 0:
        return '0'
    sign = '-' if number < 0 else ''
    _, digit_tuple, exponent = decimal.Decimal(repr(abs(number))).as_tuple()
    digits = ''.join(map(str, digit_tuple)).lstrip('0')
    stripped = digits.rstrip('0')
    exponent += len(digits) - len(stripped)
    digits, k = stripped, len(stripped)
    n = exponent + k
    if k <= n <= 21:
        return sign + digits + '0' * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + '.' + digits[n:]
    if -6 < n <= 0:
        return sign + '0.' + '0' * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + '.' + digits[1:]
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_parse(text):
    """JSON.parse: no NaN or Infinity; a number is a double (a long integer loses its tail, as in JS)."""
    def refuse(constant):
        raise ValueError(f'{constant} is not JSON')
    if not isinstance(text, str):
        raise ValueError('not text')
    return json.loads(text, parse_constant=refuse, parse_int=lambda digits: int(digits) if len(digits) < 16 else float(digits))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def inert(text):
    """Stored text quoted in a problem: control characters but tab and newline, bidi overrides and lone surrogates become U+FFFD."""
    return re.sub('[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]', '\ufffd', text)


# ---- Reading the tables ----

def read_sqlite(path):
    # A read transaction is one snapshot in WAL mode: nothing appended meanwhile is half read.
    connection = sqlite3.connect(f'file:{path}?mode=ro', uri=True, isolation_level=None)
    connection.text_factory = lambda raw: raw.decode('utf-8', 'replace')
    try:
        connection.execute('BEGIN')
        tables = {}
        for name, columns, order in (('audit_entry', ENTRY_COLUMNS, 'seq, "count"'), ('audit_batch', BATCH_COLUMNS, 'id'),
                                     ('audit_checkpoint', CHECKPOINT_COLUMNS, 'id')):
            select = ', '.join(f'"{column}"' for column in columns)
            tables[name] = [dict(zip(columns, row)) for row in connection.execute(f'SELECT {select} FROM {name} ORDER BY {order}')]
        connection.execute('COMMIT')
        return tables
    finally:
        connection.close()


def read_postgres(url):
    # One psql session, one REPEATABLE READ snapshot; each row as one line of JSON (NULL stays null, text
    # stays exact, which CSV cannot tell apart from an empty string without more rules).
    statements = ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY']
    names = {'e': ('audit_entry', ENTRY_COLUMNS, 'seq, "count"'), 'b': ('audit_batch', BATCH_COLUMNS, 'id'),
             'c': ('audit_checkpoint', CHECKPOINT_COLUMNS, 'id')}
    for tag, (name, columns, order) in names.items():
        select = ', '.join(f'"{column}"' for column in columns)
        statements.append(f"SELECT json_build_array('{tag}', {select}) FROM {name} ORDER BY {order}")
    statements.append('COMMIT')
    command = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url]
    for statement in statements:
        command += ['-c', statement]
    result = subprocess.run(command, capture_output=True, env={**os.environ, 'PGCLIENTENCODING': 'UTF8'})
    if result.returncode != 0:
        raise OSError(f"psql failed: {result.stderr.decode('utf-8', 'replace').strip()}")
    tables = {name: [] for name, _, _ in names.values()}
    for line in result.stdout.decode('utf-8').split('\n'):
        if not line:
            continue
        row = json.loads(line)
        name, columns, _ = names[row[0]]
        tables[name].append(dict(zip(columns, row[1:])))
    return tables


def read_tables(database):
    if database.startswith(('postgres://', 'postgresql://')):
        return read_postgres(database)
    path = database[len('sqlite:'):] if database.startswith('sqlite:') else database
    if not os.path.isfile(path):
        raise OSError(f'no SQLite database at {path}')
    return read_sqlite(path)


# ---- Keys and signatures (*Checkpoints*) ----

def strict_base64(text, length):
    """The bytes of canonical standard base64 of `length` bytes, else None: only that text verifies."""
    if not isinstance(text, str) or not re.fullmatch(r'[A-Za-z0-9+/]*={0,2}', text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length and base64.b64encode(raw).decode('ascii') == text else None


def public_key_bytes(spki_text):
    """The 32-byte Ed25519 key of a base64 SPKI DER text, or None."""
    der = strict_base64(spki_text, len(SPKI_PREFIX) + 32)
    return der[len(SPKI_PREFIX):] if der is not None and der.startswith(SPKI_PREFIX) else None


def key_id(spki_text):
    return sha256_hex(base64.b64decode(spki_text))[:16]


def trusted_key_text(option):
    """The trusted key as the log stores keys (base64 SPKI DER), from base64, PEM text or a PEM file."""
    if option is None:
        return None
    text = option
    if not option.lstrip().startswith('-----BEGIN') and os.path.isfile(option):
        with open(option, encoding='ascii') as file:
            text = file.read()
    if '-----BEGIN PUBLIC KEY-----' in text:
        body = text.split('-----BEGIN PUBLIC KEY-----')[1].split('-----END PUBLIC KEY-----')[0]
        text = base64.b64encode(base64.b64decode(''.join(body.split()))).decode('ascii')
    text = text.strip()
    if public_key_bytes(text) is None:
        raise ValueError('--public-key is not an Ed25519 public key (base64 SPKI DER or PEM)')
    return text


def ed25519_verifier():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return openssl_verify

    def verify(public_key, message, signature):
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
            return True
        except InvalidSignature:
            return False
    return verify


def openssl_verify(public_key, message, signature):
    with tempfile.TemporaryDirectory() as directory:
        paths = {name: os.path.join(directory, name) for name in ('key.pem', 'message', 'signature')}
        pem = base64.encodebytes(SPKI_PREFIX + public_key).decode('ascii')
        with open(paths['key.pem'], 'w', encoding='ascii') as file:
            file.write(f'-----BEGIN PUBLIC KEY-----\n{pem}-----END PUBLIC KEY-----\n')
        with open(paths['message'], 'wb') as file:
            file.write(message)
        with open(paths['signature'], 'wb') as file:
            file.write(signature)
        result = subprocess.run(['openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', paths['key.pem'], '-rawin',
                                 '-in', paths['message'], '-sigfile', paths['signature']], capture_output=True)
        return result.returncode == 0


ED25519_VERIFY = ed25519_verifier()


def signature_verifies(spki_text, message, signature_text):
    key = public_key_bytes(spki_text)
    signature = strict_base64(signature_text, 64)
    return key is not None and signature is not None and ED25519_VERIFY(key, message.encode('utf-8'), signature)


def checkpoint_message(checkpoint):
    fields = [CHECKPOINT_FORMAT, checkpoint['kind'], checkpoint['seq'], checkpoint['head_hash'], checkpoint['at'], checkpoint['pruned_through_seq']]
    if checkpoint['kind'] == 'rotation':
        fields += [checkpoint['predecessor_key'], checkpoint['successor_key']]
    return js_stringify(fields)


def describe(checkpoint):
    return f"checkpoint {checkpoint['id']} (seq {checkpoint['seq']}, signed with key {checkpoint['key_id']})"


def check_checkpoints(checkpoints, trusted):
    """Step 1 (*Key rotation*): the verified checkpoints, and the failed ones with what failed."""
    failed = {}
    verified = []
    # Each key's stretch: the seq range it vouches for and how far a prune it signs may reach.
    keys = []
    current = {'key': trusted, 'high': math.inf, 'prune_limit': math.inf}
    rotations = sorted((c for c in checkpoints if c['kind'] == 'rotation'), key=lambda c: (c['seq'], c['id']), reverse=True)
    for rotation in rotations:
        seq, pruned = rotation['seq'], rotation['pruned_through_seq']
        message = checkpoint_message(rotation)
        predecessor = rotation['predecessor_key']
        successor = key_id(rotation['successor_key']) if public_key_bytes(rotation['successor_key']) else 'no valid key'
        if current['key'] is None:
            failed[rotation['id']] = f'{describe(rotation)}: no trusted key was given'
        elif rotation['successor_key'] != current['key']:
            failed[rotation['id']] = f"checkpoint {rotation['id']} (seq {seq}, a key rotation): hands over to {successor}, but the key trusted after it is {key_id(current['key'])}"
        elif not (seq <= current['high'] and (pruned or 0) <= current['prune_limit']
                  and signature_verifies(current['key'], message, rotation['successor_signature'])
                  and public_key_bytes(predecessor) is not None and key_id(predecessor) == rotation['key_id']
                  and signature_verifies(predecessor, message, rotation['signature'])):
            failed[rotation['id']] = f"checkpoint {rotation['id']} (seq {seq}, a key rotation from {rotation['key_id']} to {successor}): its signatures do not verify"
        else:
            keys.append({**current, 'low': seq})
            current = {'key': predecessor, 'high': seq, 'prune_limit': pruned if pruned is not None else 0}
            verified.append(rotation)
    if current['key'] is not None:
        keys.append({**current, 'low': -math.inf})

    for checkpoint in checkpoints:
        if checkpoint['kind'] == 'rotation':
            continue
        seq = checkpoint['seq']
        reach = checkpoint['pruned_through_seq'] if checkpoint['pruned_through_seq'] is not None else seq
        message = checkpoint_message(checkpoint)
        eligible = [key for key in keys if (checkpoint['kind'] == 'prune' or key['low'] <= seq) and seq <= key['high'] and (checkpoint['kind'] != 'prune' or reach <= key['prune_limit'])]
        signer = next((key for key in eligible if signature_verifies(key['key'], message, checkpoint['signature'])), None)
        if signer is None:
            named = key_id(eligible[0]['key']) if eligible else key_id(trusted) if trusted else 'none'
            failed[checkpoint['id']] = f'{describe(checkpoint)}: signature does not verify with key {named}'
        elif checkpoint['key_id'] != key_id(signer['key']):
            failed[checkpoint['id']] = f"checkpoint {checkpoint['id']} (seq {seq}) names key {checkpoint['key_id']}, but is signed with key {key_id(signer['key'])}: its key id was altered"
        elif any(checkpoint[column] is not None for column in ('predecessor_key', 'successor_key', 'successor_signature')):
            failed[checkpoint['id']] = f"checkpoint {checkpoint['id']} (seq {seq}) carries the keys of a rotation, which it is not: they were added"
        else:
            verified.append(checkpoint)
    return verified, [(c, failed[c['id']]) for c in sorted(checkpoints, key=lambda c: (c['seq'], c['id'])) if c['id'] in failed]


# ---- Records, entries and batches (*Canonical serialisation and digest*, *Storage*) ----

def sealed_item(item):
    """An item as sealing wrote it: 6 elements, 7 for MASKED; a missing one reads as null."""
    width = 7 if len(item) >= 3 and item[2] == 'MASKED' else 6
    return [item[index] if index < len(item) else None for index in range(width)]


def record_digest(entry, offset, item):
    shared = [entry[column] for column in ('at', 'request_id', 'actor_id', 'actor_name', 'actor_team', 'purpose', 'operation_name', 'subject_pseudonym')]
    return sha256_hex(js_stringify([FORMAT, entry['seq'] + offset, *shared, *item]).encode('utf-8'))


def check_entry(entry, batch):
    """The entry checks of step 3's table, in order; returns the recomputed digests."""
    seq = entry['seq']
    if entry['batch_id'] != batch['id']:
        raise Problem(seq, f"record {seq}: belongs to batch {entry['batch_id']}, expected {batch['id']}")
    if entry['committed_at'] != batch['committed_at']:
        raise Problem(seq, f"record {seq}: committed at {entry['committed_at']}, expected its batch's {batch['committed_at']}")
    try:
        items, digests = js_parse(entry['items']), js_parse(entry['digests'])
        readable = isinstance(items, list) and all(isinstance(item, list) for item in items) and isinstance(digests, list)
    except ValueError:
        readable = False
    if not readable:
        raise Problem(seq, f'record {seq}: entry is not readable (expected JSON items and digests)')
    count = entry['count']
    if not isinstance(count, int) or count < 1:
        raise Problem(seq, f'record {seq}: entry holds {count} records, expected at least 1')
    if len(items) != count or len(digests) != count:
        raise Problem(seq, f'record {seq}: entry holds {len(items)} records and {len(digests)} digests, expected {count}')
    sealed = [sealed_item(item) for item in items]
    if js_stringify(sealed) != entry['items']:
        raise Problem(seq, f"record {seq}: items not stored as sealed (expected {js_stringify(sealed)}, found {entry['items']})")
    recomputed = []
    for offset, item in enumerate(sealed):
        digest = record_digest(entry, offset, item)
        if digests[offset] != digest:
            found = digests[offset] if isinstance(digests[offset], str) else js_stringify(digests[offset])
            raise Problem(seq + offset, f'record {seq + offset}: digest mismatch (expected {digest}, found {inert(found)})')
        recomputed.append(digest)
    return recomputed


def broken_entry(entries, start):
    """Step 3's scan: the first entry from `start` on stored twice or holding no record, as a Problem."""
    last = -math.inf
    for entry in entries:
        if entry['seq'] < start:
            continue
        if entry['count'] is None or entry['count'] < 1:
            return Problem(entry['seq'], f"record {entry['seq']}: entry holds {entry['count']} records, expected at least 1")
        if entry['seq'] <= last:
            return Problem(entry['seq'], f"record {entry['seq']}: stored twice (expected the next entry to start at {last + 1}, found one starting at {entry['seq']})")
        last = entry['seq'] + entry['count'] - 1
    return None


def walk(batches, entries, start_index, expected_seq, prev_hash, verified_checkpoints):
    """Step 3: every batch from start_index to the head; returns the records checked, or raises a Problem."""
    seqs = [entry['seq'] for entry in entries]
    expected_id = batches[start_index]['id']
    records = 0
    for batch in batches[start_index:]:
        bid, first, last = batch['id'], batch['first_seq'], batch['last_seq']
        if first != expected_seq:
            raise Problem(expected_seq, f'missing sequence number {expected_seq} (expected {expected_seq}, found batch {bid} starting at {first})')
        if bid != expected_id:
            raise Problem(expected_seq, f'batch {expected_id} is missing (expected batch {expected_id}, found {bid})')
        if batch['prev_hash'] != prev_hash:
            raise Problem(first, f"batch {bid}: previous hash mismatch (expected {prev_hash}, found {batch['prev_hash']})")
        digests = []
        n = first
        while n <= last:
            index = bisect_left(seqs, n)
            entry = entries[index] if index < len(entries) and seqs[index] <= last else None
            if entry is None or entry['seq'] != n:
                found = entry['seq'] if entry else f'none up to {last}'
                raise Problem(n, f'missing sequence number {n} (expected {n}, found {found})')
            digests += check_entry(entry, batch)
            records += entry['count']
            n = entry['seq'] + entry['count']
        if n != last + 1:
            raise Problem(last + 1, f'batch {bid}: its records run to {n - 1}, past its last sequence number {last}')
        try:
            computed = sha256_hex(bytes.fromhex(prev_hash) + b''.join(bytes.fromhex(d) for d in digests))
        except (TypeError, ValueError):
            computed = None
        if computed != batch['hash']:
            raise Problem(first, f"batch {bid}: hash mismatch (expected {computed}, found {batch['hash']})")
        for checkpoint in sorted((c for c in verified_checkpoints if first <= c['seq'] <= last), key=lambda c: (c['seq'], c['id'])):
            if checkpoint['seq'] != last:
                raise Problem(checkpoint['seq'], f"checkpoint {checkpoint['id']}: seq {checkpoint['seq']} is inside batch {bid} ({first}–{last}), "
                                                 'but checkpoints are taken at a batch\'s end: the batches were rewritten')
            if checkpoint['head_hash'] != batch['hash']:
                raise Problem(checkpoint['seq'], f"checkpoint {checkpoint['id']}: head hash at seq {last} is {batch['hash']}, the signed checkpoint says {checkpoint['head_hash']}")
        expected_seq, expected_id, prev_hash = last + 1, expected_id + 1, batch['hash']
    return records


def verify(tables, trusted, from_seq=None):
    """The document's *Verification*, steps 1 to 5: (records, head seq, head hash) or a Problem."""
    entries = sorted(tables['audit_entry'], key=lambda e: (e['seq'], e['count'] if e['count'] is not None else -math.inf))
    batches = sorted(tables['audit_batch'], key=lambda b: b['id'])
    head = batches[-1] if batches else None
    head_seq, head_hash = (head['last_seq'], head['hash']) if head else (0, ZERO_HASH)
    if from_seq is not None and from_seq > head_seq + 1:
        raise NothingToVerify(f"--from {from_seq} is past the log's head (seq {head_seq}): nothing to verify")

    verified, failed = check_checkpoints(tables['audit_checkpoint'], trusted)

    prunes = [c for c in verified if c['kind'] == 'prune']
    reach = lambda c: c['pruned_through_seq'] if c['pruned_through_seq'] is not None else c['seq']
    latest_prune = max(prunes, key=lambda c: (reach(c), c['id'])) if prunes else None
    pruned = reach(latest_prune) if latest_prune else 0

    problem = None
    records = 0
    overlap = None
    if from_seq is None or from_seq <= pruned + 1:
        below = [e for e in entries if e['seq'] < pruned + 1]
        if below:
            problem = Problem(below[0]['seq'], f"record {below[0]['seq']} is not covered by any batch")
        start_index, expected_seq, prev_hash = 0, pruned + 1, latest_prune['head_hash'] if latest_prune else ZERO_HASH
        last_walked = pruned
    else:
        start_index = next((i for i, b in enumerate(batches) if b['last_seq'] >= from_seq), None)
        if start_index is not None:
            start = batches[start_index]
            expected_seq, prev_hash = (from_seq if start['first_seq'] > from_seq else start['first_seq']), start['prev_hash']
        last_walked = from_seq - 1
    if problem is None and batches and start_index is not None:
        overlap = broken_entry(entries, expected_seq)
        try:
            records = walk(batches, entries, start_index, expected_seq, prev_hash, verified)
            last_walked = head_seq
        except Problem as found:
            problem = overlap if overlap is not None and overlap.seq <= found.seq else found

    if problem is None:
        # Step 4: what lies past the walk's end.
        batch_ids = {b['id'] for b in batches}
        head_id = head['id'] if head else 0
        candidates = []
        uncommitted = next((e for e in entries if e['seq'] > last_walked and (e['batch_id'] is None or e['batch_id'] <= head_id or e['batch_id'] not in batch_ids)), None)
        if uncommitted:
            candidates.append(Problem(uncommitted['seq'], f"record {uncommitted['seq']} is not covered by any batch"))
        if overlap is not None:
            candidates.append(overlap)
        beyond = [c for c in verified if c['seq'] > last_walked]
        if beyond:
            farthest = max(beyond, key=lambda c: (c['seq'], c['id']))
            candidates.append(Problem(last_walked + 1, f"missing sequence number {last_walked + 1} (expected the log to reach {farthest['seq']}, "
                                                       f"as signed checkpoint {farthest['id']} says; found its end at {last_walked})"))
        if candidates:
            problem = min(candidates, key=lambda p: p.seq)  # min keeps the first of equals: the document's order

    # Step 5: a failed checkpoint below the problem, or a failed prune reaching it, is what is reported.
    if failed:
        if problem is None:
            checkpoint, text = failed[0]
            problem = Problem(checkpoint['seq'], text)
        else:
            blamed = next(((c, t) for c, t in failed if c['seq'] < problem.seq or (c['kind'] == 'prune' and reach(c) >= problem.seq)), None)
            if blamed:
                problem = Problem(blamed[0]['seq'], blamed[1])
    if problem is not None:
        raise problem
    return records, head_seq, head_hash


def main(argv):
    parser = argparse.ArgumentParser(description='Verify a Candor access log (candor-audit/1) from docs/audit-format.md.')
    parser.add_argument('database', help='a SQLite file (or sqlite:PATH) or a postgres:// URL')
    parser.add_argument('--public-key', help='the trusted checkpoint key: base64 SPKI DER, PEM text or a PEM file')
    parser.add_argument('--from', dest='from_seq', help='verify from this sequence number on')
    args = parser.parse_args(argv)
    if args.from_seq is not None and not re.fullmatch(r'[0-9]+', args.from_seq) or args.from_seq is not None and int(args.from_seq) < 1:
        print('verify_audit_log: --from must be a sequence number ≥ 1', file=sys.stderr)
        return 2
    try:
        trusted = trusted_key_text(args.public_key)
        tables = read_tables(args.database)
        records, head_seq, head_hash = verify(tables, trusted, int(args.from_seq) if args.from_seq else None)
    except Problem as problem:
        print(f'access log broken at seq {problem.seq}: {inert(problem.text)}', file=sys.stderr)
        return 1
    except NothingToVerify as refusal:
        print(f'verify_audit_log: {refusal}', file=sys.stderr)
        return 1
    except (OSError, ValueError, sqlite3.Error) as error:
        print(f'verify_audit_log: {error}', file=sys.stderr)
        return 2
    print(f'verified {records} records through {head_seq} (head hash {head_hash})')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

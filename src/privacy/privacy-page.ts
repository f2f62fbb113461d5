import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { isBadInput, isUnknownSubject } from '../errors';
import { bodyRefusalCode, type MiddlewareError } from '../server/body-refusal';
import { maskedCause } from '../server/format-error';
import { RateLimiter, secondsUntilNextToken } from '../server/rate-limiter';
import type { CandorServices } from '../server/services';
import type { Coverage } from '../reports/governance.reports';
import type { LegalBasis } from '../taxonomy/taxonomy';
import { isMaskStrategy, type MaskStrategy } from '../policy/masking';
import { type HeldField, nameInWords, PAGE_OPERATIONS, type PrivacyService, type PrivacyView, type UsageLine } from './privacy-service';
import { checkSubjectToken } from './subject-link';

const escape = (value: unknown) => String(value ?? '').replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);

/** Legal bases in words a person uses. */
const BASIS_IN_WORDS: Record<LegalBasis, string> = {
  consent: 'Only with your permission',
  contract: 'Needed to provide the service you signed up for',
  legitimate_interests: 'Our legitimate interest — you can object',
  legal_obligation: 'Required by law',
  vital_interests: 'To protect someone’s life or health',
  public_task: 'A task in the public interest',
};
const STATE_IN_WORDS: Record<Coverage, string> = {
  granted: 'You said yes',
  'renewal needed': 'You said yes before we changed what we do for this: say yes again if you still agree',
  withdrawn: 'You said no',
  objected: 'You objected',
  'never asked': 'You have not said yes',
};
/** A yes given elsewhere, without naming the sensitive data: it does not let us use that data. */
const NOT_EXPLICIT_IN_WORDS = 'You said yes, but not explicitly to the sensitive data it uses: say yes here to include it';
/** What the page confirms after a form was sent (`done=<code>`). */
const NOTICES = {
  choice: 'Your choice is saved and applies from now on. Your receipt is below.',
  question: 'Thank you — your question is with our privacy team. The answer will appear on this page.',
} as const;
/** Subjects whose request budgets are kept at once (see RateLimiter's `maxKeys`). */
const TRACKED_LINKS = 10_000;
/** Requests one subject's link may make a minute (a person clicking makes a few). */
const PAGE_REQUESTS_PER_MINUTE = 60;
const ACTION_IN_WORDS = { grant: 'Say yes', withdraw: 'Say no', object: 'Object to this', withdraw_objection: 'Withdraw my objection' } as const;
/** What a consent entry (and its receipt) records, as something the subject did. */
const KIND_IN_WORDS: Readonly<Record<string, string>> = {
  grant: 'Said yes',
  withdraw: 'Said no',
  object: 'Objected',
  withdraw_objection: 'Withdrew an objection',
  restrict: 'Asked to restrict all use of the data',
  lift_restriction: 'Lifted the restriction',
};

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#fff;margin:0;line-height:1.5}
main{max-width:880px;margin:0 auto;padding:1rem}h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #d0d7de}
.card{border:1px solid #d0d7de;border-radius:8px;padding:.8rem 1rem;margin:.7rem 0}.muted{color:#4d565f}.benefit{color:#0b5e2e}
.state{font-weight:600}button,.button{background:#0a58ca;color:#fff;border:0;border-radius:6px;padding:.55rem .9rem;font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#57606a}button:focus,a:focus,textarea:focus,summary:focus{outline:3px solid #1f2328;outline-offset:2px}.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
textarea{width:100%;box-sizing:border-box;font:inherit;padding:.4rem;border:1px solid #57606a;border-radius:6px}label{font-weight:600;display:block;margin:.4rem 0 .2rem}
table{border-collapse:collapse;width:100%;font-size:.95rem;margin:0 0 1.2rem}caption{text-align:left;font-weight:600;padding:.3rem 0}.more{color:#57606a;font-size:.9rem;margin-top:-.8rem}th,td{border-bottom:1px solid #d0d7de;padding:.35rem .4rem;text-align:left;vertical-align:top}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between}.notice{background:#e7f3ff;border-left:4px solid #0a58ca;padding:.6rem 1rem}
details summary{cursor:pointer;color:#0a58ca;font-weight:600}td,p{overflow-wrap:anywhere}.said{white-space:pre-wrap}@media (max-width:600px){table,thead,tbody,tr,th,td{display:block}thead{display:none}td{border:0;padding:.1rem 0}td[data-label]::before{content:attr(data-label) ": ";font-weight:600}tr{border-bottom:1px solid #d0d7de;padding:.4rem 0}}`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escape(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

/**
 * A held value as a person reads it: a stored instant as a date and time, a flag (`flag`: the field holds
 * booleans) as yes or no — text that reads "false" stays text. The download keeps them as stored.
 */
function readable(value: string, flag: boolean): string {
  if (flag) return value === 'true' ? 'yes' : 'no';
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value) ? instantInWords(value) : value;
}

/** An instant as the page writes every one: `3 December 2026 at 16:24 UTC`. */
const instantInWords = (instant: string | Date): string => `${new Date(instant).toLocaleString('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' })} UTC`;

const times = (count: number) => `${count} ${count === 1 ? 'time' : 'times'}`;

/** The verbs the taxonomy's descriptions put after "the person", as they read after "you". */
const VERB_FOR_YOU: Readonly<Record<string, string>> = { is: 'are', has: 'have', uses: 'use', does: 'do' };

/**
 * A category's description (written about "the person", as the taxonomy and the reports use it) addressed to
 * the subject reading their page: "The person's e-mail address." reads "Your e-mail address.", "Where the
 * person is." "Where you are." Other text (an extension's own wording) is left as it is.
 */
export function addressedToYou(description: string): string {
  return description
    .replace(/\b([Tt])he person's\b/g, (_, t: string) => (t === 'T' ? 'Your' : 'your'))
    .replace(/\b([Tt])he person\b(?: (is|has|uses|does)\b)?/g, (_, t: string, verb?: string) => `${t === 'T' ? 'You' : 'you'}${verb ? ` ${VERB_FOR_YOU[verb]}` : ''}`);
}

/** What a masked release showed of a value, in the subject's words (each strategy's full description: src/policy/masking.ts). */
const REDUCED_FORM_IN_WORDS: Readonly<Record<MaskStrategy, string>> = {
  partial_email: 'its domain and at most its first letter, like j***@example.com',
  year: 'the year',
  city: 'the area, to about 11 km',
  keyed_hash: 'a code that stands for it and cannot be turned back into it',
};

/** How the page names the records of each type, in the order it shows them; another type comes last, named from its own name. */
const RECORD_TITLES: Readonly<Record<string, string>> = { Customer: 'Your account', Payment: 'Your payments', WatchEvent: 'What you watched', ConsentEntry: 'Your consent choices', SubjectMessage: 'Your messages to us' };
/** Rows shown of a type's records, the latest: the download has every one. */
const RECORDS_SHOWN = 12;
/** Types whose records are read oldest first (the consent ledger, messages): their latest are their last. */
const OLDEST_FIRST = new Set(['ConsentEntry', 'SubjectMessage']);

/** The type of the subject's own record, shown a field per row. */
const SUBJECT_RECORD_TYPE = 'Customer';

/**
 * What Candor holds, one table per type of record: the subject's own record (the account) a field per row,
 * the others (payments, viewing history, consent choices, messages) a record per row, so the values of one
 * record stay together.
 */
/**
 * The held data's tables. `inWords` tells a stored code in words (a consent entry's kind and purpose); the
 * download keeps the codes.
 */
function heldTables(held: readonly HeldField[], inWords: (coordinate: string, value: string) => string): string {
  const byType = new Map<string, HeldField[]>();
  for (const field of held) {
    const typeName = field.coordinate.split('.')[0];
    byType.set(typeName, [...(byType.get(typeName) ?? []), field]);
  }
  const order = (typeName: string) => {
    const position = Object.keys(RECORD_TITLES).indexOf(typeName);
    return position < 0 ? Number.MAX_SAFE_INTEGER : position;
  };
  return [...byType]
    .sort(([a], [b]) => order(a) - order(b))
    .map(([typeName, fields]) => {
      const records = fields[0].byRecord.length;
      const caption = `<caption>${escape(RECORD_TITLES[typeName] ?? `${nameInWords(typeName)} records`)}${records > 1 ? ` (${records})` : ''}</caption>`;
      if (typeName === SUBJECT_RECORD_TYPE) {
        const rows = fields.map((field) => `<tr><td data-label="What">${escape(field.label)}</td><td data-label="What we hold">${escape(readable(field.values[0], field.flag))}</td></tr>`).join('');
        return `<table>${caption}<thead><tr><th scope="col">What</th><th scope="col">What we hold</th></tr></thead><tbody>${rows}</tbody></table>`;
      }
      // The latest records, newest first; a column only for fields that hold a value in one of them.
      const latest = Array.from({ length: records }, (_, index) => (OLDEST_FIRST.has(typeName) ? records - 1 - index : index)).slice(0, RECORDS_SHOWN);
      const columns = fields.filter((field) => latest.some((index) => field.byRecord[index] !== null));
      const headers = columns.map((field) => nameInWords(field.coordinate.split('.')[1]).replace(/^./, (first) => first.toUpperCase()));
      const rows = latest.map((index) => `<tr>${columns.map((field, column) => `<td data-label="${escape(headers[column])}">${escape(field.byRecord[index] === null ? '—' : inWords(field.coordinate, readable(field.byRecord[index]!, field.flag)))}</td>`).join('')}</tr>`).join('');
      const more = records > RECORDS_SHOWN ? `<p class="more">The latest ${RECORDS_SHOWN} of ${records} are shown: “Download my data” has every one.</p>` : '';
      return `<table>${caption}<thead><tr>${headers.map((header) => `<th scope="col">${escape(header)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>${more}`;
    })
    .join('');
}

/**
 * The privacy page's path as browsers see it: under PUBLIC_URL's path, which a proxy in front strips (the page's
 * forms and links must not leave it: they carry the link's key).
 */
export const privacyPagePath = (publicUrl: string | undefined): string => `${publicUrl ? new URL(publicUrl).pathname.replace(/\/+$/, '') : ''}/privacy`;

/** A form for a question about `context`; `id` is unique in the page (its label names its text box). */
function questionForm(home: string, id: string, token: string, context: string, label: string): string {
  // The summary says what the question is about to a screen reader: a list of twenty identical links is no help.
  return `<details><summary>Ask a question about this<span class="vh">: ${escape(label)}</span></summary><form method="post" action="${escape(home)}/question"><input type="hidden" name="t" value="${escape(token)}"><input type="hidden" name="context" value="${escape(context)}"><label for="${id}">${escape(label)}</label><textarea id="${id}" name="body" rows="3" required maxlength="4000"></textarea><p><button type="submit">Send my question</button></p></form></details>`;
}

export function renderPrivacyPage(view: PrivacyView, token: string, services: CandorServices, notice?: string): string {
  const { taxonomy } = services;
  const home = privacyPagePath(services.config.publicUrl);
  let questions = 0;
  const question = (context: string, label: string) => questionForm(home, `question-${++questions}`, token, context, label);
  const purposeText = (key: string) => taxonomy.purposes.get(key)?.description ?? key;
  const categoryText = (key: string) => addressedToYou(taxonomy.categories.get(key)?.description ?? key);
  // A masked release is a use of a reduced form, not of the value: said so, with what the form showed (the
  // strategy the access log recorded for it).
  const reducedUses = ({ used, reduced }: UsageLine) =>
    reduced.length === 0
      ? ''
      : ` <span class="muted">(${reduced
          .map(({ strategy, uses }) => {
            const form = `only ${strategy !== null && isMaskStrategy(strategy) ? REDUCED_FORM_IN_WORDS[strategy] : 'a reduced form of it'}`;
            return uses < used ? `${uses} of them ${form}` : used === 1 ? form : `each time ${form}`;
          })
          .join('; ')})</span>`;
  const entryInWords = (coordinate: string, value: string) =>
    coordinate === 'ConsentEntry.kind' ? (KIND_IN_WORDS[value] ?? value) : coordinate === 'ConsentEntry.purpose' ? purposeText(value) : value;
  const held = view.held.length ? heldTables(view.held, entryInWords) : '<p>We hold no personal data about you.</p>';
  const choices = view.choices
    .map((choice) => {
      const basis = choice.purpose.legalBasis!;
      // A yes to a purpose that may use special-category data says so: it is the subject's explicit consent to it.
      const special = choice.specialCategories.map((key) => categoryText(key).replace(/\.$/, '').replace(/^./, (first) => first.toLowerCase()));
      const label = (action: keyof typeof ACTION_IN_WORDS) => (action === 'grant' && special.length ? `${ACTION_IN_WORDS.grant}, including ${special.join(' and ')}` : ACTION_IN_WORDS[action]);
      const buttons = choice.actions
        .map((action) => `<form method="post" action="${escape(home)}/choice"><input type="hidden" name="t" value="${escape(token)}"><input type="hidden" name="purpose" value="${escape(choice.purpose.key)}"><input type="hidden" name="action" value="${action}"><button type="submit" class="${action === 'withdraw' || action === 'object' ? 'secondary' : ''}" aria-label="${escape(`${label(action)}: ${choice.purpose.description}`)}">${escape(label(action))}</button></form>`)
        .join('');
      const explicitNote = !special.length
        ? ''
        : basis === 'consent'
          ? `<p class="muted">This uses sensitive data about you (${escape(special.join(', '))}); saying yes here is your explicit consent to that use.</p>`
          : `<p class="muted">This may use sensitive data about you (${escape(special.join(', '))}) only with your explicit consent: saying yes here gives it, saying no takes it back.</p>`;
      // A consent purpose has one standing (an objection first, as decide() reads it); another basis may have
      // an objection and, for its sensitive data, a consent of its own.
      // A yes that ran out is nobody's "no": the card says when it ran out.
      const expired = choice.expiredAt && `Your yes ran out on ${choice.expiredAt.toLocaleDateString('en-GB', { dateStyle: 'long', timeZone: 'UTC' })}: say yes again if you still agree`;
      const consentInWords = choice.notExplicit ? NOT_EXPLICIT_IN_WORDS : (expired ?? (choice.consent && STATE_IN_WORDS[choice.consent]));
      const lines =
        basis === 'consent'
          ? [choice.state === 'objected' ? STATE_IN_WORDS.objected : consentInWords!]
          : [
              ...(basis === 'legitimate_interests' || choice.state === 'objected' ? [choice.state === 'objected' ? STATE_IN_WORDS.objected : 'You have not objected'] : []),
              ...(consentInWords ? [`Sensitive data: ${consentInWords}`] : []),
            ];
      // A click on a broader purpose's card answers this one too: say so, rather than seem to change it unasked.
      const through = choice.answeredThrough ? `<p class="muted">Your answer for “${escape(choice.answeredThrough.description.replace(/\.$/, ''))}”, which includes this.</p>` : '';
      const state = lines.map((line) => `<p class="state">${escape(line)}</p>`).join('') + through;
      return `<div class="card" id="purpose-${escape(choice.purpose.key)}"><div class="row"><h3>${escape(choice.purpose.description)}</h3>${buttons}</div><p class="muted">${escape(BASIS_IN_WORDS[basis])}</p>${choice.purpose.benefit ? `<p class="benefit">What you get: ${escape(choice.purpose.benefit)}</p>` : ''}${explicitNote}${state}${question(`purpose:${choice.purpose.key}`, `Your question about: ${choice.purpose.description}`)}</div>`;
    })
    .join('');
  const months = [...new Set(view.usage.map((line) => line.month))];
  const usage = months.length
    ? months
        .map(
          (month) =>
            `<h3>${escape(new Date(`${month}-01T00:00:00Z`).toLocaleDateString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }))}</h3><table><thead><tr><th scope="col">Who</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">Used</th><th scope="col">Not shared because of your choices</th><th scope="col"><span class="muted">Question</span></th></tr></thead><tbody>${view.usage
              .filter((line) => line.month === month)
              .map(
                (line) =>
                  `<tr><td data-label="Who">${escape(line.team)}</td><td data-label="What">${escape(categoryText(line.category))}</td><td data-label="Why">${escape(purposeText(line.purpose))}</td><td data-label="Used">${times(line.used)}${reducedUses(line)}</td><td data-label="Not shared because of your choices">${times(line.withheldByChoice)}</td><td>${question(`usage:${month}:${line.team}:${line.purpose}`, `Your question about ${line.team} using: ${categoryText(line.category)}`)}</td></tr>`,
              )
              .join('')}</tbody></table>`,
        )
        .join('')
    : '<p>Nobody has used your data yet.</p>';
  const receipts = view.receipts.length
    ? `<ul>${view.receipts.map((receipt) => { const document = JSON.parse(receipt.document); const purpose = document.services?.[0]?.purposes?.[0]; return `<li><a href="${escape(home)}/receipt?t=${encodeURIComponent(token)}&amp;id=${escape(receipt.id)}">${escape(instantInWords(receipt.issuedAt))} — ${escape(KIND_IN_WORDS[document.action] ?? document.action)}${purpose?.purpose ? `: ${escape(purposeText(purpose.purpose))}` : ''}</a></li>`; }).join('')}</ul>`
    : '<p>No receipts yet.</p>';
  const messages = view.messages.length
    ? view.messages.map((message) => `<div class="card"><p class="said"><strong>You asked</strong> (${escape(instantInWords(message.createdAt))}): ${escape(message.body)}</p>${message.answer ? `<p class="said"><strong>Our answer</strong> (${escape(message.answeredAt ? instantInWords(message.answeredAt) : '')}): ${escape(message.answer)}</p>` : '<p class="muted">We have not answered yet.</p>'}</div>`).join('') +
      (view.earlierMessages ? `<p class="muted">${view.earlierMessages} earlier ${view.earlierMessages === 1 ? 'message is' : 'messages are'} in your download.</p>` : '')
    : '<p>You have not asked anything yet.</p>';
  return page(
    'Your data and your choices',
    `<h1>Your data and your choices</h1><p class="muted">${escape(taxonomy.controller.name)} · <a href="${escape(taxonomy.controller.policyUrl)}">privacy policy</a> · ${escape(taxonomy.controller.email)}</p>
${notice ? `<p class="notice" role="status">${escape(notice)}</p>` : ''}
${view.restricted ? '<p class="notice">You asked us to restrict the use of your data: we only keep it, and use it only where the law requires.</p>' : ''}
<section aria-labelledby="held"><h2 id="held">What we hold about you</h2>${held}<p><a class="button" href="${escape(home)}/export?t=${encodeURIComponent(token)}" download>Download my data</a></p></section>
<section aria-labelledby="choices"><h2 id="choices">How we may use it — your choices</h2><p>Each change takes effect immediately.</p>${choices}</section>
<section aria-labelledby="usage"><h2 id="usage">How your data was used</h2>${usage}</section>
<section aria-labelledby="receipts"><h2 id="receipts">Your receipts</h2><p>Every choice you make gets a receipt you can keep.</p>${receipts}</section>
<section aria-labelledby="messages"><h2 id="messages">Your questions and our answers</h2>${messages}</section>`,
  );
}

/** A page saying what went wrong and whom to write to; with the subject's link, a way back to their page. */
function refusal(response: Response, home: string, contact: { name: string; email: string }, status: number, title: string, text: string, backTo?: string): void {
  const back = backTo === undefined ? '' : `<p><a class="button" href="${escape(home)}?t=${encodeURIComponent(backTo)}">Back to your page</a></p>`;
  const write = `<p class="muted">Questions, or a new link: write to ${escape(contact.name)} at <a href="mailto:${escape(contact.email)}">${escape(contact.email)}</a>.</p>`;
  response.status(status).type('html').send(page(title, `<h1>${escape(title)}</h1><p>${escape(text)}</p>${back}${write}`));
}

/** A service message starts in lower case (it is also a GraphQL error); a page sentence does not. */
const sentence = (text: string) => text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? '' : '.');

/**
 * Records a refusal of the page in the access log, by its code and the page operation it refused
 * (`privacy-page view`, …); resolves once recorded or given up on (a refusal stands either way).
 */
export type PageRefusalRecorder = (request: Request, response: Response, code: string, operationName: string) => Promise<void>;

/**
 * The access log's name of a refusal of no page operation: a page the router lacks, or a body the form parser
 * refuses before any route is matched.
 */
const NO_PAGE_OPERATION = 'privacy-page';
/** The page's title and sentence for a form's body it cannot read, and for one past the size it reads. */
const UNREADABLE_FORM = ['We could not read that', 'Please use the form on your page and try again.'] as const;
const MESSAGE_TOO_LONG = ['Your message is too long', 'Please shorten your message and send it again.'] as const;

/**
 * `/privacy`: the data subject's own page, reached through an encrypted, expiring link. Forms post back to it;
 * there is no script. Invalid, expired or erased links get a clear page with a 4xx status. Every refusal is
 * recorded (`recordRefusal`) before it is sent, naming no subject: a link that fails names none, and recording
 * one that works under its subject would give an erased subject a pseudonym again.
 */
export function privacyRouter(services: CandorServices, privacy: PrivacyService, requestIdOf: (response: Response) => string, recordRefusal: PageRefusalRecorder): Router {
  const router = Router();
  const home = privacyPagePath(services.config.publicUrl);
  const requests = new RateLimiter(PAGE_REQUESTS_PER_MINUTE, services.clock, TRACKED_LINKS);
  /** Records the refusal of `operation` (the access log's name of the page operation refused), then sends its page. */
  const refuse = async (request: Request, response: Response, operation: string, code: string, status: number, title: string, text: string, backTo?: string) => {
    await recordRefusal(request, response, code, operation);
    refusal(response, home, services.taxonomy.controller, status, title, text, backTo);
  };
  router.use((_request: Request, response: Response, next: NextFunction) => {
    // The link's token is in the URL: no Referer carries it away, no cache keeps the page, no other site frames it.
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    next();
  });
  // A question may be 4,000 characters of any script: up to 9 bytes each once form-encoded.
  router.use(express.urlencoded({ extended: false, limit: '64kb' }));

  // A form posts its link's token in its body; a link (GET, and HEAD, which Express routes to the same handler) carries it in the URL.
  const tokenOf = (request: Request): unknown => (request.method === 'POST' ? request.body?.t : request.query.t);
  /** A page operation (`privacy-page view`, …, as the page's own records name it): the link checked, then `work`. */
  const handle = (operation: string, work: (request: Request, response: Response, subjectId: string, token: string) => Promise<void>) => async (request: Request, response: Response) => {
    // The page's forms post form-encoded: another body is not read, and a valid link in it would be refused as invalid.
    if (request.method === 'POST' && !request.is('application/x-www-form-urlencoded')) {
      return refuse(request, response, operation, 'UNSUPPORTED_MEDIA_TYPE', 415, ...UNREADABLE_FORM);
    }
    const token = tokenOf(request);
    const check = checkSubjectToken(services.config.secret, typeof token === 'string' ? token : undefined, services.clock());
    if (!check.ok) {
      return check.problem === 'expired'
        ? refuse(request, response, operation, 'LINK_EXPIRED', 410, 'This link has expired', 'For your protection, links to this page only work for a limited time. Please ask us for a new link.')
        : refuse(request, response, operation, 'LINK_INVALID', 400, 'This link is not valid', 'Please use the link exactly as you received it, or ask us for a new one.');
    }
    const { subjectId } = check;
    // Every view is recorded and reads the subject's log: a link is not a way to load either without bound.
    if (!requests.take(subjectId)) {
      response.setHeader('Retry-After', String(secondsUntilNextToken(PAGE_REQUESTS_PER_MINUTE)));
      return refuse(request, response, operation, 'RATE_LIMITED', 429, 'Please slow down', 'This page was asked for too often in the last minute. Please wait a moment, then try again.');
    }
    try {
      await work(request, response, subjectId, String(token));
    } catch (error) {
      if (isUnknownSubject(error)) await refuse(request, response, operation, 'UNKNOWN_SUBJECT', 410, 'There is no data about you any more', 'Your data has been erased, or this link does not belong to anyone we know.');
      else if (isBadInput(error)) await refuse(request, response, operation, 'BAD_USER_INPUT', 400, 'We could not do that', sentence((error as Error).message), String(token));
      else {
        // A failure, not a refusal, and not recorded as one: a choice may be saved before its record fails, and then
        // it applies (which is why the page does not say that nothing changed); most often the log itself failed.
        services.logger.error({ requestId: requestIdOf(response), ...maskedCause(error) }, 'a privacy page request failed');
        refusal(response, home, services.taxonomy.controller, 503, 'Something went wrong', 'Please reload this page in a moment: it shows what was saved. Try again if your choice is not there.');
      }
    }
  };
  const back = (response: Response, token: string, notice: keyof typeof NOTICES) => response.redirect(303, `${home}?t=${encodeURIComponent(token)}&done=${notice}`);

  router.get(
    '/',
    handle(PAGE_OPERATIONS.view, async (request, response, subjectId, token) => {
      const view = await privacy.view(subjectId, requestIdOf(response));
      // A code, not text: a link must not be able to put words in the page's mouth.
      const done = typeof request.query.done === 'string' && Object.hasOwn(NOTICES, request.query.done) ? NOTICES[request.query.done as keyof typeof NOTICES] : undefined;
      response.type('html').send(renderPrivacyPage(view, token, services, done));
    }),
  );
  router.post(
    '/choice',
    handle(PAGE_OPERATIONS.choice, async (request, response, subjectId, token) => {
      await privacy.choose(subjectId, String(request.body.purpose ?? ''), String(request.body.action ?? ''), requestIdOf(response));
      back(response, token, 'choice');
    }),
  );
  router.post(
    '/question',
    handle(PAGE_OPERATIONS.question, async (request, response, subjectId, token) => {
      await privacy.ask(subjectId, typeof request.body.context === 'string' ? request.body.context : undefined, String(request.body.body ?? ''), requestIdOf(response));
      back(response, token, 'question');
    }),
  );
  router.get(
    '/export',
    handle(PAGE_OPERATIONS.export, async (_request, response, subjectId) => {
      const data = await privacy.export(subjectId, requestIdOf(response));
      response.setHeader('Content-Disposition', `attachment; filename="my-data-${subjectId}.json"`);
      response.type('application/json').send(JSON.stringify(data, null, 2));
    }),
  );
  router.get(
    '/receipt',
    handle(PAGE_OPERATIONS.receipt, async (request, response, subjectId, token) => {
      const receipt = await privacy.receipt(subjectId, String(request.query.id ?? ''), requestIdOf(response));
      if (!receipt) return refuse(request, response, PAGE_OPERATIONS.receipt, 'RECEIPT_NOT_FOUND', 404, 'No such receipt', 'This receipt does not exist or is not yours.', token);
      response.setHeader('Content-Disposition', `attachment; filename="${receipt.id}.json"`);
      response.type('application/json').send(JSON.stringify({ receipt: JSON.parse(receipt.document), digest: { algorithm: 'SHA-256', value: receipt.digest } }, null, 2));
    }),
  );
  // A page asked with a method it does not take: 405 and the methods it takes, as /graphql answers (its forms
  // post; its links are read).
  const methodsOf = (operation: string, allowed: readonly string[]) => (request: Request, response: Response) => {
    response.setHeader('Allow', allowed.join(', '));
    return refuse(request, response, operation, 'METHOD_NOT_ALLOWED', 405, 'This page cannot do that', 'Please use the link or the form on your page exactly as you received it.');
  };
  router.all('/', methodsOf(PAGE_OPERATIONS.view, ['GET', 'HEAD']));
  router.all('/export', methodsOf(PAGE_OPERATIONS.export, ['GET', 'HEAD']));
  router.all('/receipt', methodsOf(PAGE_OPERATIONS.receipt, ['GET', 'HEAD']));
  router.all('/choice', methodsOf(PAGE_OPERATIONS.choice, ['POST']));
  router.all('/question', methodsOf(PAGE_OPERATIONS.question, ['POST']));
  router.use((request: Request, response: Response) => refuse(request, response, NO_PAGE_OPERATION, 'NOT_FOUND', 404, 'There is no such page', 'Please use the link exactly as you received it.'));
  // A body the parser refuses (too large, malformed) gets a page too, never JSON or a stack.
  router.use((error: MiddlewareError, request: Request, response: Response, next: NextFunction) => {
    if (typeof error.status !== 'number' || error.status >= 500) return next(error);
    // A body of more fields than the page's forms ever send is refused with 413 too, but no message was too long.
    const [title, text] = error.status === 413 && error.type !== 'parameters.too.many' ? MESSAGE_TOO_LONG : UNREADABLE_FORM;
    return refuse(request, response, NO_PAGE_OPERATION, bodyRefusalCode(error), error.status, title, text);
  });
  return router;
}

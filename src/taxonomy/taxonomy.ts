import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parentKey } from './keys';

export const LEGAL_BASES = ['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];

export interface Category {
  readonly key: string;
  readonly description: string;
  /** Categories under `user` are about a person; everything else is non-personal. */
  readonly personal: boolean;
  /** GDPR Art. 9 special category (inherited by sub-categories). */
  readonly special: boolean;
  /** CPRA sensitive personal information (inherited by sub-categories). */
  readonly sensitive: boolean;
  readonly extension: boolean;
}

export interface Purpose {
  readonly key: string;
  readonly description: string;
  /** Absent on grouping nodes (`marketing`), which therefore cannot be requested. */
  readonly legalBasis?: LegalBasis;
  /** What the data subject gets in return, in plain language. */
  readonly benefit?: string;
  readonly requestable: boolean;
  readonly extension: boolean;
  /** The purpose's notice: its version, since when it applies, and whether the change was material. */
  readonly notice: PurposeNotice;
}

export interface PurposeNotice {
  readonly version: number;
  /** When this version took effect (absent for the first version). */
  readonly since?: Date;
  /** A material change: consents given before `since` no longer count until renewed. */
  readonly material: boolean;
}

/** Who is responsible for the processing (named on consent receipts and the privacy page). */
export interface Controller {
  readonly name: string;
  readonly email: string;
  readonly address: string;
  readonly jurisdiction: string;
  readonly policyUrl: string;
}

export interface Taxonomy {
  readonly version: number;
  readonly legalBases: ReadonlyMap<LegalBasis, { readonly description: string }>;
  readonly categories: ReadonlyMap<string, Category>;
  readonly purposes: ReadonlyMap<string, Purpose>;
  readonly controller: Controller;
}

const DEFAULT_CONTROLLER: Controller = { name: 'The controller', email: 'privacy@example.com', address: 'Not configured', jurisdiction: 'EU', policyUrl: 'https://example.com/privacy' };

/** A taxonomy file that cannot be used; the message names the offending key. */
export class TaxonomyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaxonomyError';
  }
}

/** The fideslang keys Candor may use without marking them as extensions (shipped under schema/fideslang/). */
export interface FideslangKeys {
  readonly categories: ReadonlySet<string>;
  readonly dataUses: ReadonlySet<string>;
}

export function loadFideslangKeys(directory: string): FideslangKeys {
  const firstColumn = (file: string) =>
    new Set(
      readFileSync(join(directory, file), 'utf8')
        .split('\n')
        .slice(1)
        .map((line) => line.split('\t')[0].trim())
        .filter(Boolean),
    );
  return { categories: firstColumn('fideslang_data_categories.tsv'), dataUses: firstColumn('fideslang_data_uses.tsv') };
}

export function loadTaxonomy(file: string, fideslang: FideslangKeys): Taxonomy {
  let document: unknown;
  try {
    document = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new TaxonomyError(`${file}: cannot read taxonomy: ${(error as Error).message}`);
  }
  return parseTaxonomy(document, fideslang, file);
}

const KEY_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;

/** Validates a parsed taxonomy document; every error names the key and the file. */
export function parseTaxonomy(document: unknown, fideslang: FideslangKeys, source = 'taxonomy'): Taxonomy {
  const fail = (message: string): never => {
    throw new TaxonomyError(`${source}: ${message}`);
  };
  const root = asRecord(document) ?? fail('the document must be a mapping with legalBases, categories and purposes');
  const version = root.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail('`version` must be a positive integer');

  const legalBases = new Map<LegalBasis, { description: string }>();
  const basesNode = asRecord(root.legalBases) ?? fail('`legalBases` must be a mapping');
  for (const [key, value] of Object.entries(basesNode)) {
    if (!(LEGAL_BASES as readonly string[]).includes(key)) fail(`legal basis "${key}" is not one of ${LEGAL_BASES.join(', ')}`);
    legalBases.set(key as LegalBasis, { description: requiredText(asRecord(value), 'description', `legal basis "${key}"`, fail) });
  }
  for (const basis of LEGAL_BASES) if (!legalBases.has(basis)) fail(`legal basis "${basis}" is missing`);

  const categoryEntries = entriesOf(root.categories, 'categories', fail);
  const categories = new Map<string, Category>();
  for (const [key, entry] of categoryEntries) {
    const where = `category "${key}"`;
    checkKey(key, where, fideslang.categories, entry, categoryEntries, fail);
    const parent = parentKey(key);
    const inherited = parent ? categories.get(parent) : undefined;
    const special = flag(entry, 'special', where, fail) || Boolean(inherited?.special);
    const sensitive = flag(entry, 'sensitive', where, fail) || special || Boolean(inherited?.sensitive);
    categories.set(key, {
      key,
      description: requiredText(entry, 'description', where, fail),
      personal: key === 'user' || key.startsWith('user.'),
      special,
      sensitive,
      extension: entry.extension === true,
    });
  }

  const purposeEntries = entriesOf(root.purposes, 'purposes', fail);
  const purposes = new Map<string, Purpose>();
  for (const [key, entry] of purposeEntries) {
    const where = `purpose "${key}"`;
    checkKey(key, where, fideslang.dataUses, entry, purposeEntries, fail);
    const legalBasis = entry.legalBasis;
    if (legalBasis !== undefined && !(LEGAL_BASES as readonly unknown[]).includes(legalBasis)) {
      fail(`${where} has unknown legal basis "${String(legalBasis)}"`);
    }
    const benefit = entry.benefit;
    if (benefit !== undefined && typeof benefit !== 'string') fail(`${where}: \`benefit\` must be text`);
    purposes.set(key, {
      key,
      description: requiredText(entry, 'description', where, fail),
      legalBasis: legalBasis as LegalBasis | undefined,
      benefit: benefit as string | undefined,
      requestable: legalBasis !== undefined,
      extension: entry.extension === true,
      notice: parseNotice(entry.notice, where, fail),
    });
  }
  const controllerNode = root.controller === undefined ? undefined : (asRecord(root.controller) ?? fail('`controller` must be a mapping'));
  const controller = controllerNode
    ? {
        name: requiredText(controllerNode, 'name', 'controller', fail),
        email: requiredText(controllerNode, 'email', 'controller', fail),
        address: requiredText(controllerNode, 'address', 'controller', fail),
        jurisdiction: requiredText(controllerNode, 'jurisdiction', 'controller', fail),
        policyUrl: requiredText(controllerNode, 'policyUrl', 'controller', fail),
      }
    : DEFAULT_CONTROLLER;
  return Object.freeze({ version: version as number, legalBases, categories, purposes, controller });
}

type Fail = (message: string) => never;
type Entry = Record<string, unknown>;

function asRecord(value: unknown): Entry | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Entry) : undefined;
}

function entriesOf(node: unknown, name: string, fail: Fail): Map<string, Entry> {
  const record = asRecord(node) ?? fail(`\`${name}\` must be a mapping of key → entry`);
  const entries = new Map<string, Entry>();
  for (const [key, value] of Object.entries(record)) {
    entries.set(key, asRecord(value) ?? fail(`${name} "${key}" must be a mapping with at least a description`));
  }
  return entries;
}

function checkKey(key: string, where: string, known: ReadonlySet<string>, entry: Entry, all: Map<string, Entry>, fail: Fail): void {
  if (!KEY_PATTERN.test(key)) fail(`${where} is not a dotted lower-case key`);
  const parent = parentKey(key);
  if (parent !== undefined && !all.has(parent)) fail(`${where} has no parent entry "${parent}"`);
  if (parent !== undefined && [...all.keys()].indexOf(parent) > [...all.keys()].indexOf(key)) {
    fail(`${where} must come after its parent "${parent}"`);
  }
  if (entry.extension !== undefined && typeof entry.extension !== 'boolean') fail(`${where}: \`extension\` must be true or false`);
  if (!known.has(key) && entry.extension !== true) {
    fail(`${where} is not a fideslang key; mark a Candor-specific key with \`extension: true\` in its own entry`);
  }
  if (known.has(key) && entry.extension === true) fail(`${where} is a fideslang key and must not be marked as an extension`);
}

function requiredText(entry: Entry | undefined, field: string, where: string, fail: Fail): string {
  const value = entry?.[field];
  if (typeof value !== 'string' || value.trim() === '') fail(`${where} needs a non-empty \`${field}\``);
  return (value as string).trim();
}

function parseNotice(node: unknown, where: string, fail: Fail): PurposeNotice {
  if (node === undefined) return { version: 1, material: false };
  const notice = asRecord(node) ?? fail(`${where}: \`notice\` must be a mapping with version, since and material`);
  const version = notice.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail(`${where}: notice.version must be a positive integer`);
  let since: Date | undefined;
  if (notice.since !== undefined) {
    since = notice.since instanceof Date ? notice.since : new Date(String(notice.since));
    if (Number.isNaN(since.getTime())) fail(`${where}: notice.since must be an ISO-8601 date`);
  }
  const material = flag(notice, 'material', `${where} notice`, fail);
  if (material && !since) fail(`${where}: a material notice change needs notice.since`);
  return { version: version as number, since, material };
}

function flag(entry: Entry, field: string, where: string, fail: Fail): boolean {
  const value = entry[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') fail(`${where}: \`${field}\` must be true or false`);
  return value as boolean;
}

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isoTime } from '../errors';
// masking.ts is a leaf (node:crypto only): the taxonomy names the strategies, the policy applies them.
import { isMaskStrategy, MASK_STRATEGIES, type MaskStrategy } from '../policy/masking';
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
  /**
   * The reduced form in which this category may be released for the listed purposes. Not inherited:
   * a strategy fits one value format (an e-mail address, a date), so a sub-category declares its own.
   */
  readonly mask?: CategoryMask;
}

/** `mask: { strategy: partial_email, purposes: [analytics.reporting] }` on a personal category. */
export interface CategoryMask {
  /** One of `MASK_STRATEGIES` (src/policy/masking.ts). */
  readonly strategy: MaskStrategy;
  /** Purpose keys of the taxonomy, each listed once. */
  readonly purposes: readonly string[];
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
  /**
   * When the latest material change before this version took effect: consents given before it still need
   * renewing once a later, non-material version (a typo fixed) is published.
   */
  readonly materialSince?: Date;
}

/**
 * The latest material change of a notice — this version's, or an earlier version's (`materialSince`) —
 * taking effect by `at` when given (one announced for later does not stop earlier consents before then):
 * consents given before it need renewing. Undefined when there is none.
 */
export function latestMaterialChange(notice: PurposeNotice, at: Date): Date | undefined {
  return latestChangeAt(materialChanges(notice), at);
}

/** The material changes a notice declares (this version's, an earlier one's), earliest first. */
export function materialChanges(notice: PurposeNotice): Date[] {
  return [notice.materialSince, notice.material ? notice.since : undefined].filter((change): change is Date => change !== undefined).sort((a, b) => a.getTime() - b.getTime());
}

/** Of `changes`, the latest in effect at `at` (consents given before it need renewing then), if any. */
export function latestChangeAt(changes: readonly Date[], at: Date): Date | undefined {
  return changes.filter((change) => change.getTime() <= at.getTime()).sort((a, b) => b.getTime() - a.getTime())[0];
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
  /** The current data uses (deprecated ones are not among them). */
  readonly dataUses: ReadonlySet<string>;
  /** Data uses fideslang deprecated, with the key that replaces each (null when none does). */
  readonly deprecatedDataUses?: ReadonlyMap<string, string | null>;
}

export function loadFideslangKeys(directory: string): FideslangKeys {
  const rows = (file: string) => {
    const [header, ...lines] = readFileSync(join(directory, file), 'utf8').split('\n');
    const columns = header.split('\t').map((name) => name.trim());
    return lines.filter((line) => line.trim()).map((line) => Object.fromEntries(line.split('\t').map((value, position) => [columns[position], value.trim()])) as Record<string, string | undefined>);
  };
  const uses = rows('fideslang_data_uses.tsv');
  const deprecated = (row: Record<string, string | undefined>) => Boolean(row.version_deprecated);
  return {
    categories: new Set(rows('fideslang_data_categories.tsv').map((row) => row.fides_key!)),
    dataUses: new Set(uses.filter((row) => !deprecated(row)).map((row) => row.fides_key!)),
    deprecatedDataUses: new Map(uses.filter(deprecated).map((row) => [row.fides_key!, row.replaced_by || null])),
  };
}

/** Options of `loadTaxonomy`. */
export interface LoadTaxonomyOptions {
  /**
   * Extension files to load after the ones the base file names in `extensionFiles`; relative paths are
   * resolved against the working directory. Default: none.
   */
  readonly extensions?: readonly string[];
}

/** A parsed taxonomy extension file and where it came from (named in every error about its entries). */
export interface TaxonomyExtension {
  readonly document: unknown;
  readonly source: string;
}

/**
 * Loads the base taxonomy and its extension files: first those the base names in `extensionFiles`
 * (relative to the base file), then `options.extensions`. A file named twice is read once.
 */
export function loadTaxonomy(file: string, fideslang: FideslangKeys, options: LoadTaxonomyOptions = {}): Taxonomy {
  const document = readYamlFile(file, 'taxonomy');
  const named = declaredExtensionFiles(document, failIn(file)).map((path) => resolve(dirname(file), path));
  const paths = [...new Set([...named, ...(options.extensions ?? []).map((path) => resolve(path))])];
  if (paths.includes(resolve(file))) throw new TaxonomyError(`${file}: the base taxonomy cannot be one of its own extension files`);
  const extensions = paths.map((path) => ({ document: readYamlFile(path, 'taxonomy extension'), source: path }));
  return parseTaxonomy(document, fideslang, file, extensions);
}

function readYamlFile(file: string, what: string): unknown {
  try {
    return parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    // The YAML parser appends a multi-line code frame; its first line already names the line and column.
    throw new TaxonomyError(`${file}: cannot read ${what}: ${(error as Error).message.split('\n')[0].replace(/:$/, '')}`);
  }
}

const KEY_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;

// Unknown fields are refused rather than ignored: a misspelt `sensitve: true` would otherwise silently drop a protection.
const BASE_SECTIONS = ['version', 'controller', 'legalBases', 'categories', 'purposes', 'extensionFiles'];
const EXTENSION_SECTIONS = ['categories', 'purposes'];
/** fideslang's two category roots: what is about a person (`user`) and what is not (`system`). */
const CATEGORY_ROOTS: readonly string[] = ['user', 'system'];
const CATEGORY_FIELDS = ['description', 'special', 'sensitive', 'extension', 'mask'];
const PURPOSE_FIELDS = ['description', 'legalBasis', 'benefit', 'extension', 'notice'];
const NOTICE_FIELDS = ['version', 'since', 'material', 'materialSince'];
const MASK_FIELDS = ['strategy', 'purposes'];
const CONTROLLER_FIELDS = ['name', 'email', 'address', 'jurisdiction', 'policyUrl'];

/**
 * Validates a parsed taxonomy document and the extension documents that add to it; every error names the
 * file and the key. Reads no file: `loadTaxonomy` reads the ones `extensionFiles` names and passes them here.
 */
export function parseTaxonomy(document: unknown, fideslang: FideslangKeys, source = 'taxonomy', extensions: readonly TaxonomyExtension[] = []): Taxonomy {
  const fail = failIn(source);
  const root = asRecord(document) ?? fail('the document must be a mapping with legalBases, categories and purposes');
  onlyKnownFields(root, BASE_SECTIONS, 'the taxonomy', fail);
  declaredExtensionFiles(root, fail);
  const version = root.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail('`version` must be a positive integer');

  const legalBases = new Map<LegalBasis, { description: string }>();
  const basesNode = asRecord(root.legalBases) ?? fail('`legalBases` must be a mapping');
  for (const [key, value] of Object.entries(basesNode)) {
    if (!(LEGAL_BASES as readonly string[]).includes(key)) fail(`legal basis "${key}" is not one of ${LEGAL_BASES.join(', ')}`);
    legalBases.set(key as LegalBasis, { description: requiredText(asRecord(value), 'description', `legal basis "${key}"`, fail) });
  }
  for (const basis of LEGAL_BASES) if (!legalBases.has(basis)) fail(`legal basis "${basis}" is missing`);

  // Base first, then each extension file in order: a parent must come before its children across files too.
  const layers: Layer[] = [{ root, source, extensionFile: false }, ...extensions.map(extensionLayer)];

  // Purposes before categories: a category's mask names purposes.
  const purposes: ReadonlyMap<string, Purpose> = parseSection<Purpose>(layers, 'purposes', fideslang.dataUses, PURPOSE_FIELDS, (key, entry, where, failAt, earlier) => {
    const legalBasis = entry.legalBasis;
    if (legalBasis !== undefined && !(LEGAL_BASES as readonly unknown[]).includes(legalBasis)) {
      failAt(`${where} has unknown legal basis "${String(legalBasis)}"`);
    }
    // A field declared for a purpose serves its sub-purposes: a sub-purpose on another basis would widen
    // every such field (a consent purpose's child on legitimate interests needs no consent). So in the base
    // file as in extensions, a purpose that needs another basis is declared beside, not under, the other.
    const ancestor = nearestWithBasis(parentKey(key), earlier);
    if (ancestor && legalBasis !== undefined && legalBasis !== ancestor.legalBasis) {
      failAt(`${where} rests on ${String(legalBasis)}, but its parent purpose "${ancestor.key}" on ${ancestor.legalBasis}: a sub-purpose keeps the legal basis of the purpose it refines`);
    }
    // Renewal reads the requested purpose's own notice: one on a grouping key would never apply.
    if (entry.notice !== undefined && legalBasis === undefined) failAt(`${where} has a notice but no legal basis: a notice belongs to a purpose requests declare (one with a legal basis)`);
    const benefit = entry.benefit;
    if (benefit !== undefined && typeof benefit !== 'string') failAt(`${where}: \`benefit\` must be text`);
    return {
      key,
      description: requiredText(entry, 'description', where, failAt),
      legalBasis: legalBasis as LegalBasis | undefined,
      benefit: benefit as string | undefined,
      requestable: legalBasis !== undefined,
      extension: entry.extension === true,
      notice: parseNotice(entry.notice, where, failAt),
    };
  }, fideslang.deprecatedDataUses);

  const categories: ReadonlyMap<string, Category> = parseSection(layers, 'categories', fideslang.categories, CATEGORY_FIELDS, (key, entry, where, failAt, earlier) => {
    const parent = parentKey(key);
    const inherited = parent ? earlier.get(parent) : undefined;
    const special = flag(entry, 'special', where, failAt) || Boolean(inherited?.special);
    const sensitive = flag(entry, 'sensitive', where, failAt) || special || Boolean(inherited?.sensitive);
    // fideslang splits every category between two roots, `user` (about a person) and `system`. A root of
    // our own would have to be one or the other, and guessing would fail open (non-personal data is
    // released whatever the purpose): an extension category goes under one of the two.
    if (parent === undefined && !CATEGORY_ROOTS.includes(key)) {
      failAt(`${where} is a new top-level category: extension categories go under "user" (personal data) or "system" (not about a person)`);
    }
    const personal = key === 'user' || key.startsWith('user.');
    // decide() releases non-personal data whatever the purpose (rule 1): a flag asking for care there would do nothing.
    if ((special || sensitive) && !personal) failAt(`${where} is marked ${special ? 'special' : 'sensitive'} but is not personal data (only categories under "user" are): it would be released whatever the purpose`);
    const mask = parseMask(entry.mask, personal, purposes, where, failAt);
    return {
      key,
      description: requiredText(entry, 'description', where, failAt),
      personal,
      special,
      sensitive,
      extension: entry.extension === true,
      ...(mask ? { mask } : {}),
    };
  });

  const controllerNode = root.controller === undefined ? undefined : (asRecord(root.controller) ?? fail('`controller` must be a mapping'));
  if (controllerNode) onlyKnownFields(controllerNode, CONTROLLER_FIELDS, 'controller', fail);
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

/** One file's contribution: the base taxonomy or an extension file. */
interface Layer {
  readonly root: Entry;
  readonly source: string;
  readonly extensionFile: boolean;
}

/** An entry with the file that defined it and its place in the merged order (base first). */
interface SourcedEntry {
  readonly entry: Entry;
  readonly source: string;
  readonly extensionFile: boolean;
  readonly position: number;
}

function failIn(source: string): Fail {
  return (message) => {
    throw new TaxonomyError(`${source}: ${message}`);
  };
}

/** The base file's `extensionFiles`: paths relative to the base file (validated here, read by `loadTaxonomy`). */
function declaredExtensionFiles(document: unknown, fail: Fail): string[] {
  const list = asRecord(document)?.extensionFiles;
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.some((path) => typeof path !== 'string' || path.trim() === '')) {
    fail('`extensionFiles` must be a list of file paths, relative to this file');
  }
  return list as string[];
}

/** An extension file adds categories and purposes only: legal bases, the controller and the version belong to the base. */
function extensionLayer({ document, source }: TaxonomyExtension): Layer {
  const fail = failIn(source);
  const root = asRecord(document) ?? fail('a taxonomy extension file must be a mapping with `categories` and/or `purposes`');
  onlyKnownFields(root, EXTENSION_SECTIONS, 'a taxonomy extension file', fail);
  if (root.categories === undefined && root.purposes === undefined) fail('a taxonomy extension file must add `categories` or `purposes`');
  return { root, source, extensionFile: true };
}

/**
 * Every entry of one section across the layers, checked, in order, and built by `build`, which sees the
 * entries built before it (the parent's, for inheritance) and fails naming the entry's own file.
 */
function parseSection<T>(
  layers: readonly Layer[],
  section: 'categories' | 'purposes',
  fideslangKeys: ReadonlySet<string>,
  fields: readonly string[],
  build: (key: string, entry: Entry, where: string, fail: Fail, earlier: ReadonlyMap<string, T>) => T,
  deprecated: ReadonlyMap<string, string | null> = new Map(),
): Map<string, T> {
  const singular = section === 'categories' ? 'category' : 'purpose';
  const merged = mergeLayers(layers, section, singular);
  const parsed = new Map<string, T>();
  for (const [key, sourced] of merged) {
    const fail = failIn(sourced.source);
    const where = `${singular} "${key}"`;
    checkEntry(key, where, sourced, merged, fideslangKeys, fields, fail, deprecated);
    parsed.set(key, build(key, sourced.entry, where, fail, parsed));
  }
  return parsed;
}

/** Every entry of one section across the layers, in order; a key defined twice is refused in the later file. */
function mergeLayers(layers: readonly Layer[], section: 'categories' | 'purposes', singular: string): Map<string, SourcedEntry> {
  const merged = new Map<string, SourcedEntry>();
  for (const layer of layers) {
    if (layer.extensionFile && layer.root[section] === undefined) continue;
    const fail = failIn(layer.source);
    for (const [key, entry] of entriesOf(layer.root[section], section, fail)) {
      const existing = merged.get(key);
      if (existing) fail(`${singular} "${key}" is already defined in ${existing.source}; an extension file may add keys, never redefine or rename an existing one`);
      merged.set(key, { entry, source: layer.source, extensionFile: layer.extensionFile, position: merged.size });
    }
  }
  return merged;
}

function checkEntry(
  key: string,
  where: string,
  sourced: SourcedEntry,
  all: ReadonlyMap<string, SourcedEntry>,
  fideslangKeys: ReadonlySet<string>,
  fields: readonly string[],
  fail: Fail,
  deprecated: ReadonlyMap<string, string | null>,
): void {
  const { entry } = sourced;
  if (!KEY_PATTERN.test(key)) fail(`${where} is not a dotted lower-case key`);
  onlyKnownFields(entry, fields, where, fail);
  const parent = parentKey(key);
  if (parent !== undefined) {
    const parentEntry = all.get(parent) ?? fail(`${where} has no parent entry "${parent}"${sourced.extensionFile ? ' in the base taxonomy or any extension file' : ''}`);
    if (parentEntry.position > sourced.position) {
      fail(`${where} must come after its parent "${parent}"${parentEntry.source === sourced.source ? '' : ` (defined in ${parentEntry.source}, which must be loaded first)`}`);
    }
  }
  if (entry.extension !== undefined && typeof entry.extension !== 'boolean') fail(`${where}: \`extension\` must be true or false`);
  if (sourced.extensionFile && entry.extension !== true) fail(`${where} must say \`extension: true\`, as every entry of an extension file does`);
  if (deprecated.has(key) && entry.extension !== true) {
    const replacement = deprecated.get(key);
    fail(`${where} is a deprecated fideslang key${replacement ? `, replaced by "${replacement}": use that` : ''}; or mark it as a Candor extension with \`extension: true\``);
  }
  if (!fideslangKeys.has(key) && entry.extension !== true) {
    fail(`${where} is not a fideslang key; mark a Candor-specific key with \`extension: true\` in its own entry`);
  }
  if (fideslangKeys.has(key) && entry.extension === true) {
    fail(`${where} is a fideslang key and must not be marked as an extension${sourced.extensionFile ? '; fideslang keys belong in the base taxonomy' : ''}`);
  }
}

function onlyKnownFields(entry: Entry, allowed: readonly string[], where: string, fail: Fail): void {
  for (const field of Object.keys(entry)) if (!allowed.includes(field)) fail(`${where} has unknown field \`${field}\` (allowed: ${allowed.join(', ')})`);
}

/**
 * A category's `mask`: a known strategy and the purposes it may serve. Only personal categories: a
 * non-personal one is released whole (rule 1 of decide()), so a mask there would promise a reduction
 * that never happens.
 */
function parseMask(node: unknown, personal: boolean, purposes: ReadonlyMap<string, Purpose>, where: string, fail: Fail): CategoryMask | undefined {
  if (node === undefined) return undefined;
  const mask = asRecord(node) ?? fail(`${where}: \`mask\` must be a mapping with strategy and purposes`);
  onlyKnownFields(mask, MASK_FIELDS, `${where} mask`, fail);
  if (!personal) fail(`${where} is not personal data: only categories under "user" may declare a mask`);
  const strategy = mask.strategy;
  if (typeof strategy !== 'string' || !isMaskStrategy(strategy)) {
    fail(`${where}: mask.strategy must be one of ${Object.keys(MASK_STRATEGIES).join(', ')}, got ${strategy === undefined ? 'none' : `"${String(strategy)}"`}`);
  }
  const list = mask.purposes;
  if (!Array.isArray(list) || list.length === 0) fail(`${where}: mask.purposes must be a non-empty list of purpose keys`);
  const seen = new Set<string>();
  for (const purpose of list as unknown[]) {
    if (typeof purpose !== 'string' || !purposes.has(purpose)) fail(`${where} masks for "${String(purpose)}", which is not a purpose of the taxonomy`);
    if (seen.has(purpose as string)) fail(`${where} lists mask purpose "${String(purpose)}" twice`);
    seen.add(purpose as string);
  }
  return Object.freeze({ strategy: strategy as MaskStrategy, purposes: Object.freeze([...seen]) });
}

function requiredText(entry: Entry | undefined, field: string, where: string, fail: Fail): string {
  const value = entry?.[field];
  if (typeof value !== 'string' || value.trim() === '') fail(`${where} needs a non-empty \`${field}\``);
  return (value as string).trim();
}

function parseNotice(node: unknown, where: string, fail: Fail): PurposeNotice {
  if (node === undefined) return { version: 1, material: false };
  const notice = asRecord(node) ?? fail(`${where}: \`notice\` must be a mapping with version, since and material`);
  onlyKnownFields(notice, NOTICE_FIELDS, `${where} notice`, fail);
  const version = notice.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) fail(`${where}: notice.version must be a positive integer`);
  const instant = (field: 'since' | 'materialSince'): Date | undefined => {
    const value = notice[field];
    if (value === undefined || value instanceof Date) return value;
    try {
      return isoTime(String(value), `${where}: notice.${field}`);
    } catch (error) {
      return fail((error as Error).message);
    }
  };
  const since = instant('since');
  const materialSince = instant('materialSince');
  const material = flag(notice, 'material', `${where} notice`, fail);
  if (material && !since) fail(`${where}: a material notice change needs notice.since`);
  if (materialSince && (!since || materialSince.getTime() > since.getTime())) fail(`${where}: notice.materialSince is an earlier version's change: it needs notice.since, and must not come after it`);
  return { version: version as number, since, material, ...(materialSince ? { materialSince } : {}) };
}

/** The purpose nearest `key` (itself included) that declares a legal basis. */
function nearestWithBasis(key: string | undefined, purposes: ReadonlyMap<string, Purpose>): Purpose | undefined {
  for (let current = key; current !== undefined; current = parentKey(current)) {
    const purpose = purposes.get(current);
    if (purpose?.legalBasis) return purpose;
  }
  return undefined;
}

function flag(entry: Entry, field: string, where: string, fail: Fail): boolean {
  const value = entry[field];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') fail(`${where}: \`${field}\` must be true or false`);
  return value as boolean;
}

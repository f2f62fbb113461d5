import { COMMANDS, hasSubcommand, HELP, helpFor, optionsOf, PARSED_OPTIONS, usageOf } from '../../src/cli/help';

describe('the CLI help: one catalogue for the list, each command\'s help and the option check', () => {
  it('describes, for each command, exactly the options its synopsis shows', () => {
    for (const { name, synopsis, options } of COMMANDS) {
      const shown = [...(synopsis ?? '').matchAll(/--([a-z]+)/g)].map((match) => match[1]).sort();
      expect({ name, options: Object.keys(options ?? {}).sort() }).toEqual({ name, options: shown });
    }
  });

  it('gives an option the same kind wherever it appears, since the command line is parsed once for all commands', () => {
    const kinds = new Map<string, string[]>();
    for (const { name, options } of COMMANDS) {
      for (const [option, { value }] of Object.entries(options ?? {})) kinds.set(option, [...(kinds.get(option) ?? []), `${name}: ${value ? 'string' : 'boolean'}`]);
    }
    for (const [option, uses] of kinds) {
      const types = new Set(uses.map((use) => use.split(': ')[1]));
      expect({ option, types: [...types] }).toEqual({ option, types: [PARSED_OPTIONS[option].type] });
    }
  });

  it('lists every command in `candor --help`', () => {
    for (const { name } of COMMANDS) expect(HELP).toContain(`\n  ${name}`);
  });

  it("details one command's options, lists a command family, and knows no command it does not have", () => {
    const verify = helpFor(['audit', 'verify'])!;
    expect(verify.startsWith('Usage: npx candor audit verify [--from SEQ] [--checkpoints FILE]\n')).toBe(true);
    expect(verify).toMatch(/\n {2}--from SEQ +check from the batch holding sequence number SEQ/);
    expect(verify).toMatch(/\n {2}--checkpoints FILE +an earlier `audit checkpoint export`/);
    expect(helpFor(['report', 'ropa'])).toBe(helpFor(['report']));
    const audit = helpFor(['audit'])!;
    for (const command of ['audit verify', 'audit checkpoint', 'audit prune', 'audit partitions']) expect(audit).toContain(`\n  ${command}`);
    expect(helpFor(['erase'])).toBeUndefined();
  });

  it('takes the options a command describes, and none for a command that describes none', () => {
    expect(optionsOf('report', 'ropa')).toEqual(['subject', 'from', 'to', 'format', 'out']);
    expect(optionsOf('inbox', 'answer')).toEqual(['text']);
    expect(optionsOf('actor', 'list')).toEqual([]);
    expect(optionsOf('serve', undefined)).toEqual([]);
  });
});

describe('the usage line a misused command is answered with, from the same catalogue', () => {
  it.each([
    [['audit', 'checkpoint'], 'usage: npx candor audit checkpoint <create|export|rotate>'],
    [['consent'], 'usage: npx candor consent import FILE [--again] [--check] (FILE: .csv with a header row, or .json)'],
    [['secret'], 'usage: npx candor secret rotate (with CANDOR_SECRET=<current> CANDOR_NEXT_SECRET=<new>)'],
    [['inbox'], 'usage: npx candor inbox <list [--all] [--after ID] | answer ID --text "…">'],
    [['actor'], 'usage: npx candor actor <create|list|rotate|revoke> …'],
    [['audit'], 'usage: npx candor audit <verify|checkpoint|prune|partitions> …'],
    [['report'], 'usage: npx candor report <ropa|subject-access|purpose-usage|denials|consent-coverage> [--subject ID] [--from DATE] [--to DATE] --format <json|csv|html|pdf|md> [--out FILE]'],
  ])('%j', (words, usage) => expect(usageOf(...words)).toBe(usage));
});

describe('the subcommands a command takes, from the same catalogue', () => {
  it.each([
    ['audit', 'verify', true],
    ['audit', 'bogus', false],
    ['audit', undefined, false],
    ['secret', 'rotate', true],
    ['serve', undefined, true],
    ['report', 'ropa', true],
  ])('%s %s: %s', (command, subcommand, taken) => expect(hasSubcommand(command, subcommand)).toBe(taken));
});

import { Directive, Extensions, ObjectType } from 'type-graphql';

/** The annotation every field of every object type carries (read back from `field.extensions.governance`). */
export interface GovernedFieldOptions {
  /** The data category of the field's value (a taxonomy key, e.g. `user.contact.email`). */
  readonly category: string;
  /** The purposes the field may serve; may be omitted for non-personal categories. */
  readonly purposes?: readonly string[];
  /** Root Query/Mutation fields only: the roles an actor needs to call them. */
  readonly roles?: readonly string[];
  /**
   * Root fields only: calling the operation is itself recorded in the access log with this reason
   * (e.g. `ACCESS_LOG_READ` for reads of the log), once per request.
   */
  readonly recordAs?: string;
  /**
   * Root fields with `recordAs` only: the argument naming the data subject the operation acts on (a path into
   * an input object, e.g. `input.subjectId`). Each call that answers is then recorded with its subject, so the
   * log ties a change of someone's choices to them; a call that fails changed nothing and is not recorded.
   */
  readonly subjectArgument?: string;
  /**
   * Root fields only: the Boolean argument that, when true, keeps only the data subjects whose choices
   * (restriction, objection, consent) allow the request's purpose. Each subject the filter looked at is
   * recorded, kept or left out (the store tells the filter whom it left out): the caller learned that much
   * of their privacy preferences.
   */
  readonly filtersOnChoices?: string;
}

/** Per-type annotation: where the data subject of a record is found. */
export interface GovernedTypeOptions {
  /** The property of the resolved record that holds the data subject's id (`id` for Customer itself). */
  readonly subjectKey?: string;
  readonly description?: string;
}

export const GOVERNANCE_EXTENSION = 'governance';
export const SUBJECT_EXTENSION = 'governanceSubject';

const quote = (value: string) => JSON.stringify(value);
const list = (values: readonly string[]) => `[${values.map(quote).join(', ')}]`;

/**
 * Declares a field's governance once. It stores the metadata on the field (extensions, read by the
 * enforcement points, the audit and the reports) and emits the `@governed` SDL directive so the printed
 * schema shows it; the schema build adds it to the field description for Apollo Sandbox's docs panel.
 */
export function Governed(options: GovernedFieldOptions): MethodDecorator & PropertyDecorator {
  const metadata = {
    category: options.category,
    purposes: [...(options.purposes ?? [])],
    ...(options.roles ? { roles: [...options.roles] } : {}),
    ...(options.recordAs ? { recordAs: options.recordAs } : {}),
    ...(options.subjectArgument ? { subjectArgument: options.subjectArgument } : {}),
    ...(options.filtersOnChoices ? { filtersOnChoices: options.filtersOnChoices } : {}),
  };
  const directiveArguments = [`category: ${quote(metadata.category)}`];
  if (metadata.purposes.length) directiveArguments.push(`purposes: ${list(metadata.purposes)}`);
  if (options.roles?.length) directiveArguments.push(`roles: ${list(options.roles)}`);
  const extensions = Extensions({ [GOVERNANCE_EXTENSION]: metadata });
  const directive = Directive(`@governed(${directiveArguments.join(', ')})`);
  return (target: object, propertyKey: string | symbol, descriptor?: PropertyDescriptor) => {
    extensions(target, propertyKey as string, descriptor as PropertyDescriptor);
    directive(target, propertyKey as string, descriptor as PropertyDescriptor);
  };
}

/**
 * Declares a governed object type. Fields without their own resolver read the record's property directly
 * (type-graphql `simpleResolvers`), so only root fields and relations count as declared resolvers for
 * graphql-shield, and the leaf guard decides the rest of each record as the record is resolved.
 */
export function GovernedType(name: string, options: GovernedTypeOptions = {}): ClassDecorator {
  const objectType = ObjectType(name, { simpleResolvers: true, description: options.description });
  const subject = options.subjectKey ? Extensions({ [SUBJECT_EXTENSION]: options.subjectKey }) : undefined;
  return (target) => {
    objectType(target);
    subject?.(target);
  };
}

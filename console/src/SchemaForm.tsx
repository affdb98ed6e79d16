// A form generated from a connector's JSON Schema (its Airbyte `connectionSpecification`): required fields,
// defaults, enums, `oneOf` choices, nested objects, arrays, and `airbyte_secret` fields as password inputs.
import { useState } from "preact/hooks";
import type { JsonSchema } from "./api";

export type Config = Record<string, unknown>;
export const MASK = "********";

function asObject(value: unknown): Config {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Config) : {};
}

function kind(schema: JsonSchema): string {
  const t = schema.type;
  if (Array.isArray(t)) return t.find((x) => x !== "null") ?? "string";
  if (t) return t;
  if (schema.properties || schema.oneOf) return "object";
  return "string";
}

function choices(schema: JsonSchema): JsonSchema[] | null {
  const options = schema.oneOf ?? schema.anyOf;
  return options && options.length > 0 && options.every((o) => o.properties) ? options : null;
}

function ordered(schema: JsonSchema): [string, JsonSchema][] {
  return Object.entries(schema.properties ?? {}).sort(
    ([a, x], [b, y]) => (x.order ?? 1e6) - (y.order ?? 1e6) || a.localeCompare(b),
  );
}

/** The discriminator of a `oneOf` option: its properties with a `const` (or one-value enum). */
function constants(option: JsonSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(option.properties ?? {})) {
    if (prop.const !== undefined) out[name] = prop.const;
    else if (prop.enum && prop.enum.length === 1) out[name] = prop.enum[0];
  }
  return out;
}

function matchOption(options: JsonSchema[], value: unknown): number {
  if (!value || typeof value !== "object") return 0;
  const v = value as Config;
  const found = options.findIndex((option) => {
    const consts = Object.entries(constants(option));
    return consts.length > 0 && consts.every(([k, c]) => v[k] === c);
  });
  return found < 0 ? 0 : found;
}

/** The initial value of a schema: its defaults, nested objects' defaults, the first `oneOf` choice. */
export function defaultsOf(schema: JsonSchema): unknown {
  const options = choices(schema);
  const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
  // some specs give an object field a label as its default (source-file: provider "Public Web"): ignore it
  if (schema.default !== undefined && (!(options || kind(schema) === "object") || isObject(schema.default))) {
    return structuredClone(schema.default);
  }
  if (options) return defaultsOf(options[0]!);
  if (kind(schema) === "object" && schema.properties) {
    const out: Config = { ...constants(schema) };
    const required = new Set(schema.required ?? []);
    for (const [name, prop] of ordered(schema)) {
      if (out[name] !== undefined) continue;
      const value = defaultsOf(prop);
      if (value !== undefined && (!isObject(value) || required.has(name) || Object.keys(value as Config).length > 0)) {
        out[name] = value;
      }
    }
    return out;
  }
  return undefined;
}

interface FieldProps {
  name: string;
  schema: JsonSchema;
  value: unknown;
  required: boolean;
  id: string;
  onChange: (value: unknown) => void;
}

function Help({ id, schema }: { id: string; schema: JsonSchema }) {
  if (!schema.description) return null;
  // descriptions are connector-authored text, rendered as text (never as HTML)
  return (
    <small id={`${id}-help`} class="help">
      {schema.description.replace(/<[^>]+>/g, "")}
    </small>
  );
}

function Label({ id, schema, name, required }: { id: string; schema: JsonSchema; name: string; required: boolean }) {
  return (
    <label for={id}>
      {schema.title ?? name}
      {required ? (
        <span class="required" aria-hidden="true">
          {" "}
          *
        </span>
      ) : null}
    </label>
  );
}

function Field({ name, schema, value, required, id, onChange }: FieldProps) {
  const options = choices(schema);
  if (options) return <Choice {...{ name, schema, value, required, id, onChange, options }} />;
  const type = kind(schema);
  const describedBy = schema.description ? `${id}-help` : undefined;
  if (type === "object") {
    return (
      <fieldset class="nested">
        <legend>{schema.title ?? name}</legend>
        <Help id={id} schema={schema} />
        <ObjectFields schema={schema} value={asObject(value)} idPrefix={id} onChange={onChange} />
      </fieldset>
    );
  }
  if (schema.enum) {
    return (
      <div class="field">
        <Label {...{ id, schema, name, required }} />
        <select
          id={id}
          required={required}
          aria-describedby={describedBy}
          value={value === undefined ? "" : String(value)}
          onChange={(e) => {
            const raw = (e.target as HTMLSelectElement).value;
            onChange(raw === "" ? undefined : schema.enum!.find((x) => String(x) === raw));
          }}
        >
          {required && value !== undefined ? null : <option value="">(not set)</option>}
          {schema.enum.map((option) => (
            <option value={String(option)}>{String(option)}</option>
          ))}
        </select>
        <Help id={id} schema={schema} />
      </div>
    );
  }
  if (type === "boolean") {
    return (
      <div class="field checkbox">
        <input
          id={id}
          type="checkbox"
          aria-describedby={describedBy}
          checked={value === true}
          onChange={(e) => onChange((e.target as HTMLInputElement).checked)}
        />
        <Label {...{ id, schema, name, required }} />
        <Help id={id} schema={schema} />
      </div>
    );
  }
  if (type === "integer" || type === "number") {
    return (
      <div class="field">
        <Label {...{ id, schema, name, required }} />
        <input
          id={id}
          type="number"
          inputMode={type === "integer" ? "numeric" : "decimal"}
          step={type === "integer" ? 1 : "any"}
          min={schema.minimum}
          max={schema.maximum}
          required={required}
          aria-describedby={describedBy}
          value={value === undefined || value === null ? "" : String(value)}
          onInput={(e) => {
            const raw = (e.target as HTMLInputElement).value;
            onChange(raw === "" ? undefined : Number(raw));
          }}
        />
        <Help id={id} schema={schema} />
      </div>
    );
  }
  if (type === "array") {
    const items = schema.items ?? {};
    const list = Array.isArray(value) ? (value as unknown[]) : [];
    if (items.enum) {
      return (
        <fieldset class="nested">
          <legend>{schema.title ?? name}</legend>
          {items.enum.map((option, i) => (
            <div class="field checkbox">
              <input
                id={`${id}-${i}`}
                type="checkbox"
                checked={list.includes(option)}
                onChange={(e) => {
                  const on = (e.target as HTMLInputElement).checked;
                  onChange(on ? [...list, option] : list.filter((x) => x !== option));
                }}
              />
              <label for={`${id}-${i}`}>{String(option)}</label>
            </div>
          ))}
          <Help id={id} schema={schema} />
        </fieldset>
      );
    }
    return (
      <div class="field">
        <Label {...{ id, schema, name, required }} />
        <textarea
          id={id}
          rows={3}
          required={required}
          aria-describedby={describedBy}
          placeholder="one value per line"
          value={list.map(String).join("\n")}
          onInput={(e) => {
            const lines = (e.target as HTMLTextAreaElement).value.split("\n").map((s) => s.trim()).filter(Boolean);
            const itemType = kind(items);
            onChange(
              lines.length === 0
                ? undefined
                : itemType === "integer" || itemType === "number"
                  ? lines.map(Number)
                  : lines,
            );
          }}
        />
        <Help id={id} schema={schema} />
      </div>
    );
  }
  const text = value === undefined || value === null ? "" : String(value);
  const onInput = (e: Event) => {
    const raw = (e.target as HTMLInputElement | HTMLTextAreaElement).value;
    onChange(raw === "" && !required ? undefined : raw);
  };
  if (schema.multiline && !schema.airbyte_secret) {
    return (
      <div class="field">
        <Label {...{ id, schema, name, required }} />
        <textarea id={id} rows={4} required={required} aria-describedby={describedBy} value={text} onInput={onInput} />
        <Help id={id} schema={schema} />
      </div>
    );
  }
  return (
    <div class="field">
      <Label {...{ id, schema, name, required }} />
      <input
        id={id}
        type={schema.airbyte_secret ? "password" : "text"}
        autocomplete={schema.airbyte_secret ? "new-password" : "off"}
        spellcheck={false}
        required={required}
        pattern={schema.pattern}
        placeholder={schema.examples?.length ? String(schema.examples[0]) : undefined}
        aria-describedby={describedBy}
        value={text}
        onInput={onInput}
      />
      <Help id={id} schema={schema} />
    </div>
  );
}

function Choice(props: FieldProps & { options: JsonSchema[] }) {
  const { name, schema, value, id, onChange, options } = props;
  const [chosen, setChosen] = useState(() => matchOption(options, value));
  const option = options[chosen]!;
  const hidden = new Set(Object.keys(constants(option)));
  return (
    <fieldset class="nested">
      <legend>{schema.title ?? name}</legend>
      <div class="field">
        <label for={`${id}-choice`}>{`${schema.title ?? name}: type`}</label>
        <select
          id={`${id}-choice`}
          value={String(chosen)}
          onChange={(e) => {
            const index = Number((e.target as HTMLSelectElement).value);
            setChosen(index);
            onChange(defaultsOf(options[index]!));
          }}
        >
          {options.map((o, i) => (
            <option value={String(i)}>{o.title ?? `Option ${i + 1}`}</option>
          ))}
        </select>
      </div>
      <Help id={id} schema={schema} />
      <ObjectFields
        schema={option}
        value={{ ...asObject(value), ...constants(option) }}
        idPrefix={`${id}-${chosen}`}
        onChange={onChange}
        hide={hidden}
      />
    </fieldset>
  );
}

export function ObjectFields(props: {
  schema: JsonSchema;
  value: Config;
  idPrefix: string;
  onChange: (value: Config) => void;
  hide?: Set<string>;
}) {
  const required = new Set(props.schema.required ?? []);
  return (
    <>
      {ordered(props.schema)
        .filter(([name]) => !props.hide?.has(name))
        .map(([name, prop]) => (
          <Field
            key={name}
            name={name}
            schema={prop}
            value={props.value[name]}
            required={required.has(name)}
            id={`${props.idPrefix}-${name}`}
            onChange={(next) => {
              const copy = { ...props.value };
              if (next === undefined) delete copy[name];
              else copy[name] = next;
              props.onChange(copy);
            }}
          />
        ))}
    </>
  );
}

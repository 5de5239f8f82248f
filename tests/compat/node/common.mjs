// Shared by the Node.js scenario drivers: the scenario (../scenario.json), reply encoding
// into JSON for the pytest side, and a bounded wait for pub/sub messages.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export const scenario = JSON.parse(
  readFileSync(new URL('../scenario.json', import.meta.url), 'utf8')
);

const require = createRequire(import.meta.url);

/** The installed version of an (aliased) package: `redis6` -> `6.3.1`. */
export function packageVersion(name) {
  return require(`${name}/package.json`).version;
}

/** Replace {id} in every argument of a command. */
export function withId(command, id) {
  return command.map((arg) => arg.replaceAll('{id}', id));
}

/** A reply or an error, as JSON the pytest side checks (see tests/compat/scenario.py). */
export function encode(value, errorClass) {
  if (value instanceof Error) {
    return {
      error: {
        class: value.constructor.name,
        libraryError: errorClass !== undefined && value instanceof errorClass,
        message: value.message,
      },
    };
  }
  if (Buffer.isBuffer(value)) return { type: 'buffer', value: value.toString('utf8') };
  if (value === null) return { type: 'null', value: null };
  if (Array.isArray(value)) return { type: 'array', value: value.map((v) => encode(v, errorClass)) };
  return { type: typeof value, value };
}

/** Settle a promise into an encoded reply (never throws). */
export async function settle(promise, errorClass) {
  try {
    return encode(await promise, errorClass);
  } catch (err) {
    return encode(err, errorClass);
  }
}

/** Wait until `messages` holds `count` entries, for at most `ms` milliseconds. */
export async function waitFor(messages, count, ms = 10000) {
  const deadline = Date.now() + ms;
  while (messages.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function connectionSettings() {
  const port = process.env.TASKSTORE_PORT;
  if (!port) throw new Error('TASKSTORE_PORT is not set');
  return {
    host: '127.0.0.1',
    port: Number(port),
    password: process.env.TASKSTORE_PASSWORD || undefined,
  };
}

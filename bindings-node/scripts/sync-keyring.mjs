// lib/keyring.js is written from bindings-wasm/js/keyring.js, the one source of the JS
// Keyring for both packages: the same lines, as CommonJS. `node scripts/sync-keyring.mjs`
// writes it; test/dts.test.mjs and scripts/check-dts.mjs fail when it differs.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
export const target = join(pkg, 'lib', 'keyring.js')
const source = join(pkg, '..', 'bindings-wasm', 'js', 'keyring.js')

/** The CommonJS text of the shared source: its one `export function` made a module.exports. */
export function keyringCjs() {
  const esm = readFileSync(source, 'utf8')
  const names = [...esm.matchAll(/^export function (\w+)/gm)].map((m) => m[1])
  if (names.length !== 1 || /^\s*(import|export)\b(?! function)/m.test(esm)) {
    throw new Error(`${source}: expected one exported function and no imports`)
  }
  const header = '// Written from bindings-wasm/js/keyring.js by scripts/sync-keyring.mjs: edit that file.\n'
  return `${header}'use strict'\n\n${esm.replace(/^export function/m, 'function')}\nmodule.exports = { ${names[0]} }\n`
}

/** Problems for the drift check: none when lib/keyring.js is the shared source's text. */
export function keyringDrift() {
  let committed = ''
  try {
    committed = readFileSync(target, 'utf8')
  } catch {}
  return committed === keyringCjs() ? [] : ['lib/keyring.js differs from bindings-wasm/js/keyring.js (regenerate: node scripts/sync-keyring.mjs)']
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(target, keyringCjs())
  console.log(`wrote ${target}`)
}

// ES modules export names that are written down (index.js, node.mjs), so they are compared
// here with what the package has: every public name of the bound API (js/api.js over the
// wasm-bindgen module, `_`-prefixed helpers excluded) is a named export of both entries, and
// the declarations (index.d.ts) declare exactly the values index.js exports, so TypeScript
// accepts no import that fails at run time. A native export added in Rust without its name
// in the lists fails this test.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import * as nodeEntry from '../../node.mjs'
import * as webEntry from '../../index.js'

const require = createRequire(import.meta.url)
const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const sorted = (a) => [...a].sort()

const api = await nodeEntry.default()
const publicNames = sorted(Object.keys(api).filter((n) => !n.startsWith('_')))
const named = (ns) => sorted(Object.keys(ns).filter((n) => n !== 'default'))

test('node.mjs exports every public name of the API by name', () => {
  assert.deepEqual(named(nodeEntry), publicNames)
})

test('index.js exports every public name of the API by name (and initSync)', () => {
  assert.deepEqual(named(webEntry), sorted([...publicNames, 'initSync']))
})

test('index.d.ts declares exactly the values index.js exports', () => {
  const ts = require(path.join(pkg, 'node_modules/typescript'))
  const file = path.join(pkg, 'index.d.ts')
  const program = ts.createProgram([file], { strict: true, noEmit: true, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler, lib: ['lib.esnext.d.ts', 'lib.dom.d.ts'] })
  const checker = program.getTypeChecker()
  const values = checker
    .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)))
    .filter((s) => {
      const t = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
      return (t.flags & ts.SymbolFlags.Value) !== 0
    })
    .map((s) => s.name)
    .filter((n) => n !== 'default')
  assert.deepEqual(sorted(values), named(webEntry))
})

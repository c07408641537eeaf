// Node processes of the interop matrix: the Node package and the wasm package under Node.
//
//   node tests/interop/node-side.mjs write|read NAME[,NAME...] DIR
//
// NAME is `node` (bindings-node) or `wasm-node-webcrypto` / `wasm-node-wasm` (bindings-wasm's
// nodejs build on that backend). Writes objects to DIR/NAME/ or results to DIR/results/NAME.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { nodeAddonApi, readAll, wasmApi, writeAll } from './harness.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const [mode, names, dir] = process.argv.slice(2)
if (!['write', 'read'].includes(mode) || !names || !dir) {
  console.error('usage: node-side.mjs write|read NAME[,NAME...] DIR')
  process.exit(2)
}

async function apiFor(name) {
  if (name === 'node') return nodeAddonApi(createRequire(import.meta.url)(path.join(ROOT, 'bindings-node/lib/index.js')))
  const m = /^wasm-node-(webcrypto|wasm)$/.exec(name)
  if (!m) throw new Error(`unknown side ${name}`)
  const { default: init } = await import(path.join(ROOT, 'bindings-wasm/node.mjs'))
  return wasmApi(await init(), m[1])
}

const io = {
  async readBytes(p) {
    try {
      return new Uint8Array(await readFile(path.join(dir, p)))
    } catch {
      return null
    }
  },
  async readText(p) {
    try {
      return await readFile(path.join(dir, p), 'utf8')
    } catch {
      return null
    }
  },
  async write(p, data) {
    await mkdir(path.dirname(path.join(dir, p)), { recursive: true })
    await writeFile(path.join(dir, p), data)
  },
}

const plan = JSON.parse(await readFile(path.join(dir, 'plan.json'), 'utf8'))
for (const name of names.split(',')) {
  const api = await apiFor(name)
  if (mode === 'write') await writeAll(api, io, plan, name)
  else await io.write(`results/${name}.json`, JSON.stringify(await readAll(api, io, plan, name)))
}

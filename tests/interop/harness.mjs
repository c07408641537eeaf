// The JavaScript writer and reader of the interop matrix, shared by the Node package, the
// wasm package under Node and the wasm package in Chromium (each through an adapter below).
// tests/interop/interop.py and tests/interop/rust/ do the same in Python and Rust; run.mjs
// drives them all and prints the matrix.
//
// On-disk contract, per writer W under the matrix directory:
//   W/<object>.bin          the ciphertext
//   W/<object>.meta.json    {"isec": envelope text, "isec-kid": kid}  (S3 user metadata)
//   W/<object>.isec-table   the encoded segment table (table layout only)
//   W/written.json          {"writer": W, "objects": {<object>: {"sha256", "ciphertext_len"}}}, last
//   W/neg-*.{bin,meta.json,isec-table}   corrupted copies, made by run.mjs after the writes
// A reader regenerates every plaintext from the plan's seed (never the writer's copy), and
// returns {"reader", "ms", "cells": {W: {"total", "passed", "failures", "negatives"}}}.

import { concat, hex } from '../js/vectors.mjs'

/**
 * The plan's deterministic plaintext: xorshift32 from `seed`, four little-endian bytes per
 * step (the same generator as interop.py and rust/src/main.rs).
 */
export function generate(seed, n) {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 0x9e3779b9
  for (let i = 0; i < n; i += 4) {
    x = (x ^ (x << 13)) >>> 0
    x = (x ^ (x >>> 17)) >>> 0
    x = (x ^ (x << 5)) >>> 0
    for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (x >>> (8 * k)) & 0xff
  }
  return out
}

export async function sha256hex(bytes) {
  const d = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes))
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
}

const u8 = (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

function envelopeOptions(spec) {
  const o = { frameSize: spec.frame_size }
  if (spec.layout === 'parts') o.partSize = spec.part_size
  if (spec.layout === 'table') o.table = true
  if (spec.declared) o.declaredSize = spec.size
  return o
}

/**
 * What the Node and wasm adapters do alike: both packages name these calls and their
 * results the same way (keys, envelopes and their inspection).
 */
function keysAndEnvelopes(isec) {
  return {
    codes: new Set(isec.errorCodes().map((c) => c.code)),
    keyring(plan) {
      const r = new isec.Keyring()
      r.addKek(plan.kid, hex(plan.kek), 'active')
      return r
    },
    create: (ring, spec) => ring.createEnvelopeSync(envelopeOptions(spec)),
    decode: (text) => isec.Envelope.decodeText(text),
    open: (ring, env) => ring.openSync(env),
    info(env, ctLen) {
      const i = ctLen === undefined ? env.inspect() : env.inspect(ctLen)
      return { kid: i.kid, layout: i.layout, frameSize: i.frameSize, partSize: i.partSize ?? null, declaredSize: i.declaredSize ?? null, plaintextLength: i.plaintextLength ?? null }
    },
  }
}

/** The Node package (bindings-node): async one-shot calls on the libuv pool, sync streams. */
export function nodeAddonApi(isec) {
  return {
    ...keysAndEnvelopes(isec),
    encrypt: async (key, pt) => u8(await isec.encrypt(key, pt)),
    encryptPart: async (key, n, last, pt) => u8(await isec.encryptPart(key, n, last, pt)),
    encryptor(key, part, last) {
      const e = part === undefined ? new isec.Encryptor(key) : isec.Encryptor.forPart(key, part, last)
      return { update: (c) => u8(e.update(c)), final: () => u8(e.final()), prefix: () => u8(e.prefix) }
    },
    tableEncode: (key, entries) => u8(new isec.SegmentTable(entries).encode(key)),
    decrypt: async (key, ct) => u8(await isec.decrypt(key, ct)),
    decryptWithTable: async (key, table, ct) => u8(await isec.decryptWithTable(key, table, ct)),
    shape: (env, key, ctLen, table) => (table ? isec.Shape.fromTable(key, table, ctLen) : isec.shapeFor(env, ctLen)),
    decryptor(key, shape) {
      const d = shape ? isec.Decryptor.withShape(key, shape) : new isec.Decryptor(key)
      return { update: (c) => u8(d.update(c)), final: () => u8(d.final()) }
    },
    mapRange: (shape, a, b) => shape.mapRange(a, b),
    decryptRange: async (key, shape, a, b, fetched) => u8(await isec.decryptRange(key, shape, a, b, fetched)),
  }
}

/** The wasm package (bindings-wasm) on one backend, under Node or in a browser. */
export function wasmApi(isec, backend) {
  const opts = { backend }
  return {
    ...keysAndEnvelopes(isec),
    encrypt: (key, pt) => isec.encrypt(key, pt, opts),
    encryptPart: (key, n, last, pt) => isec.encryptPart(key, n, last, pt, opts),
    encryptor(key, part, last) {
      const e = part === undefined ? new isec.Encryptor(key, opts) : isec.Encryptor.forPart(key, part, last, opts)
      if (e.backend !== backend) throw new Error(`encryptor runs on ${e.backend}, not ${backend}`)
      return { update: (c) => e.update(c), final: () => e.final(), prefix: () => e.prefix }
    },
    tableEncode: (key, entries) => new isec.SegmentTable(entries).encode(key),
    decrypt: (key, ct) => isec.decrypt(key, ct, opts),
    decryptWithTable: (key, table, ct) => isec.decryptWithTable(key, table, ct, opts),
    shape: (env, key, ctLen, table) => (table ? isec.Shape.fromTable(key, table, ctLen) : isec.shapeFor(env, ctLen)),
    decryptor(key, shape) {
      const d = shape ? isec.Decryptor.withShape(key, shape, opts) : new isec.Decryptor(key, opts)
      if (d.backend !== backend) throw new Error(`decryptor runs on ${d.backend}, not ${backend}`)
      return { update: (c) => d.update(c), final: () => d.final() }
    },
    mapRange: (shape, a, b) => shape.mapRange(a, b),
    decryptRange: (key, shape, a, b, fetched) => isec.decryptRange(key, shape, a, b, fetched, opts),
  }
}

/** Feeds `data` to a context in pieces of the cycled `sizes`. */
async function pump(ctx, data, sizes) {
  const out = []
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(Math.max(1, sizes[i % sizes.length]), data.length - at)
    out.push(await ctx.update(data.subarray(at, at + n)))
    at += n
  }
  out.push(await ctx.final())
  return concat(out)
}

async function encryptObject(api, key, spec, pt, sizes) {
  const stream = spec.api === 'stream'
  if (spec.layout === 'single') {
    return { ct: stream ? await pump(api.encryptor(key), pt, sizes) : await api.encrypt(key, pt) }
  }
  if (spec.layout === 'parts') {
    const p = spec.part_size
    const count = Math.max(1, Math.ceil(pt.length / p))
    const pieces = new Array(count)
    const order = Array.from({ length: count }, (_, i) => (stream ? i + 1 : count - i))
    for (const n of order) {
      // One-shot parts go in reverse order: a part needs only its number and lastness.
      const body = pt.subarray((n - 1) * p, Math.min(n * p, pt.length))
      pieces[n - 1] = stream ? await pump(api.encryptor(key, n, n === count), body, sizes) : await api.encryptPart(key, n, n === count, body)
    }
    return { ct: concat(pieces) }
  }
  const pieces = []
  const entries = []
  let at = 0
  for (const [i, [n, len]] of spec.parts.entries()) {
    const body = pt.subarray(at, at + len)
    at += len
    // Relays do not know which part is last; the table records where the object ends, and
    // the nonce prefix of each part's encryption (the encryptor's, or the part's first 7 bytes).
    if (i % 2 === 1) {
      const enc = api.encryptor(key, n, false)
      pieces.push(await pump(enc, body, sizes))
      entries.push([n, len, enc.prefix()])
    } else {
      const part = await api.encryptPart(key, n, false, body)
      pieces.push(part)
      entries.push([n, len, part.subarray(0, 7)])
    }
  }
  return { ct: concat(pieces), table: api.tableEncode(key, entries) }
}

/** Writes every object of the plan as writer `writer`. */
export async function writeAll(api, io, plan, writer) {
  const ring = api.keyring(plan)
  const written = {}
  for (const spec of plan.objects) {
    const pt = generate(plan.seeds[writer][spec.name], spec.size)
    const { envelope, key } = await api.create(ring, spec)
    const { ct, table } = await encryptObject(api, key, spec, pt, plan.chunks)
    await io.write(`${writer}/${spec.name}.bin`, ct)
    await io.write(`${writer}/${spec.name}.meta.json`, JSON.stringify({ isec: envelope.toText(), 'isec-kid': envelope.kid }))
    if (table) await io.write(`${writer}/${spec.name}.isec-table`, table)
    written[spec.name] = { sha256: await sha256hex(pt), ciphertext_len: ct.length }
  }
  // Written last: its presence says the writer finished.
  await io.write(`${writer}/written.json`, JSON.stringify({ writer, objects: written }))
}

function describe(api, e) {
  if (e && typeof e.code === 'string' && api.codes.has(e.code)) return e.code
  // Not one of core's codes: a crash of the binding (a wasm trap is a RuntimeError) or a
  // harness fault; either way the check fails with what was thrown.
  return `NOT AN ISEC ERROR: ${e && e.name}: ${e && e.message}${e && e.code ? ` (code ${e.code})` : ''}`
}

function same(got, want) {
  got = u8(got)
  if (got.length === want.length && got.every((b, i) => b === want[i])) return
  let at = 0
  while (at < got.length && at < want.length && got[at] === want[at]) at++
  throw new HarnessError(`plaintext differs: ${got.length} bytes, want ${want.length}, first difference at ${at}`)
}

async function loadStored(io, dir, name, table) {
  const ct = await io.readBytes(`${dir}/${name}.bin`)
  const metaText = await io.readText(`${dir}/${name}.meta.json`)
  if (ct == null || metaText == null) throw new Error(`${name}: missing files`)
  const meta = JSON.parse(metaText)
  const t = table ? await io.readBytes(`${dir}/${name}.isec-table`) : undefined
  if (table && t == null) throw new Error(`${name}: missing segment table`)
  return { ct, text: meta.isec, metaKid: meta['isec-kid'], table: t }
}

async function full(api, key, s) {
  return s.table ? api.decryptWithTable(key, s.table, s.ct) : api.decrypt(key, s.ct)
}

async function streamed(api, env, key, s, sizes) {
  const shape = s.table ? api.shape(env, key, s.ct.length, s.table) : undefined
  return pump(api.decryptor(key, shape), s.ct, sizes)
}

/** A ranged read as over HTTP: map the range, hand over exactly the planned ciphertext. */
async function ranged(api, env, key, s, a, b) {
  const shape = api.shape(env, key, s.ct.length, s.table)
  const plan = api.mapRange(shape, a, b)
  return api.decryptRange(key, shape, a, b, s.ct.subarray(plan.ctStart, plan.ctEnd))
}

/** Reads every writer's objects as reader `reader`; returns the result document. */
export async function readAll(api, io, plan, reader) {
  const t0 = Date.now()
  const ring = api.keyring(plan)
  const cells = {}
  for (const writer of plan.writers) {
    const cell = { total: 0, passed: 0, failures: [], negatives: {} }
    cells[writer] = cell
    const check = async (what, fn) => {
      cell.total++
      try {
        await fn()
        cell.passed++
      } catch (e) {
        cell.failures.push(`${what}: ${e instanceof HarnessError ? e.message : describe(api, e)}`)
      }
    }
    const writtenText = await io.readText(`${writer}/written.json`)
    if (writtenText == null) {
      cell.total++
      cell.failures.push('no objects: the writer did not finish')
      continue
    }
    const written = JSON.parse(writtenText)
    for (const spec of plan.objects) {
      const pt = generate(plan.seeds[writer][spec.name], spec.size)
      const n = spec.size
      let stored, env, key
      const ready = async () => {
        if (!stored) stored = await loadStored(io, writer, spec.name, spec.layout === 'table').catch((e) => Promise.reject(new HarnessError(e.message)))
        env ??= api.decode(stored.text)
        key ??= await api.open(ring, env)
        return stored
      }
      await check(`${spec.name} plaintext hash`, async () => {
        const want = await sha256hex(pt)
        const got = written.objects?.[spec.name]?.sha256
        if (got !== want) throw new HarnessError(`writer recorded ${got}, plan gives ${want}`)
      })
      await check(`${spec.name} envelope`, async () => {
        const s = await ready()
        const i = api.info(env, s.table ? undefined : s.ct.length)
        const bad = []
        if (i.kid !== plan.kid || s.metaKid !== plan.kid) bad.push(`kid ${i.kid} / isec-kid ${s.metaKid}`)
        if (i.layout !== spec.layout) bad.push(`layout ${i.layout}`)
        if (i.frameSize !== spec.frame_size) bad.push(`frame size ${i.frameSize}`)
        if (i.partSize !== (spec.part_size ?? null)) bad.push(`part size ${i.partSize}`)
        if (i.declaredSize !== (spec.declared ? n : null)) bad.push(`declared size ${i.declaredSize}`)
        if (!s.table && i.plaintextLength !== n) bad.push(`plaintext length ${i.plaintextLength}`)
        if (bad.length) throw new HarnessError(bad.join(', '))
      })
      await check(`${spec.name} whole`, async () => {
        const s = await ready()
        same(await full(api, key, s), pt)
      })
      await check(`${spec.name} stream`, async () => {
        const s = await ready()
        same(await streamed(api, env, key, s, plan.read_chunks), pt)
      })
      for (const [a, b] of spec.ranges) {
        await check(`${spec.name} range [${a},${b})`, async () => {
          const s = await ready()
          const lo = Math.min(a, n)
          same(await ranged(api, env, key, s, a, b), pt.subarray(lo, Math.max(lo, Math.min(b, n))))
        })
      }
    }
    for (const neg of plan.negatives) {
      const base = plan.objects.find((o) => o.name === neg.base)
      const codes = {}
      for (const mode of ['oneshot', 'stream', 'range']) {
        try {
          const s = await loadStored(io, writer, neg.name, base.layout === 'table')
          const e = api.decode(s.text)
          const k = await api.open(ring, e)
          if (mode === 'oneshot') await full(api, k, s)
          else if (mode === 'stream') await streamed(api, e, k, s, plan.read_chunks)
          else await ranged(api, e, k, s, 0, base.size)
          codes[mode] = 'succeeded'
        } catch (e) {
          codes[mode] = describe(api, e)
        }
      }
      cell.negatives[neg.name] = codes
    }
  }
  return { reader, ms: Date.now() - t0, cells }
}

/** A failure of the harness's own checks (not an error thrown by a binding). */
class HarnessError extends Error {}

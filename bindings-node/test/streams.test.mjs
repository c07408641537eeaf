// stream.Transform classes, file helpers, bounded memory, event-loop responsiveness and
// cancellation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, existsSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import v8 from 'node:v8'
import vm from 'node:vm'
import { isec, pattern, codeOfAsync } from './helpers.mjs'

function gcFn() {
  if (typeof globalThis.gc === 'function') return globalThis.gc
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc')
}

function keyFor(options) {
  const ring = new isec.Keyring()
  ring.addKek('k', randomBytes(32))
  return ring.createEnvelopeSync(options)
}

async function collect(readable, ...transforms) {
  const parts = []
  await pipeline(readable, ...transforms, new Writable({ write(c, _e, cb) { parts.push(c); cb() } }))
  return Buffer.concat(parts)
}

test('Transform round trip with many chunk sizes, sync and pool paths', async () => {
  const { key } = keyFor({ frameSize: 4096 })
  const pt = pattern(300_000)
  for (const size of [1, 4095, 4097, 65536, 300_000]) {
    const chunks = []
    for (let i = 0; i < pt.length; i += size) chunks.push(pt.subarray(i, i + size))
    for (const asyncThreshold of [1, Infinity]) {
      const ct = await collect(Readable.from(chunks), new isec.EncryptStream(key, { asyncThreshold }))
      assert.deepEqual(isec.decryptSync(key, ct), pt)
      const back = await collect(Readable.from([ct]), new isec.DecryptStream(key, { asyncThreshold }))
      assert.deepEqual(back, pt)
    }
  }
  // A part of a multipart object.
  const parts = keyFor({ frameSize: 4096, partSize: 8192 })
  const p1 = await collect(Readable.from([pt.subarray(0, 8192)]), new isec.EncryptStream(parts.key, { partNumber: 1 }))
  const s2 = new isec.EncryptStream(parts.key, { partNumber: 2, isLast: true })
  const p2 = await collect(Readable.from([pt.subarray(8192, 9000)]), s2)
  assert.deepEqual(isec.decryptSync(parts.key, Buffer.concat([p1, p2])), pt.subarray(0, 9000))
  // Its nonce prefix, for a table-layout part's segment-table entry.
  assert.deepEqual(s2.prefix, p2.subarray(0, 7))
  // A stream error carries the core code.
  const ct = isec.encryptSync(key, pt)
  ct[5000] ^= 1
  assert.equal(await codeOfAsync(collect(Readable.from([ct]), new isec.DecryptStream(key))), 'authentication_failed')
})

test('encryptFile / decryptFile: round trip, and all or nothing on tampering', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isec-node-'))
  try {
    const { key } = keyFor()
    const pt = randomBytes(3 * 1024 * 1024 + 17)
    writeFileSync(join(dir, 'plain'), pt)
    await isec.encryptFile(key, join(dir, 'plain'), join(dir, 'enc'))
    await isec.decryptFile(key, join(dir, 'enc'), join(dir, 'dec'))
    assert.deepEqual(readFileSync(join(dir, 'dec')), pt)
    const bad = readFileSync(join(dir, 'enc'))
    bad[bad.length - 5] ^= 1
    writeFileSync(join(dir, 'bad'), bad)
    assert.equal(await codeOfAsync(isec.decryptFile(key, join(dir, 'bad'), join(dir, 'out'))), 'authentication_failed')
    assert.equal(existsSync(join(dir, 'out')), false)
    assert.deepEqual(readdirSync(dir).sort(), ['bad', 'dec', 'enc', 'plain'])
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(isec.encryptFile(key, join(dir, 'plain'), join(dir, 'x'), { signal: ac.signal }), { name: 'AbortError' })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a 1 GiB stream through the Transforms grows RSS by less than 32 MiB', async () => {
  const gc = gcFn()
  const { key } = keyFor()
  const CHUNK = 1024 * 1024
  const TOTAL = 1024 * CHUNK
  let made = 0
  const source = new Readable({
    highWaterMark: 2 * CHUNK,
    read() {
      if (made >= TOTAL) return this.push(null)
      const b = Buffer.allocUnsafe(CHUNK)
      b.fill(made / CHUNK & 0xff)
      made += CHUNK
      this.push(b)
    },
  })
  // Warm up the allocator and the pool, then take the baseline.
  await collect(Readable.from([Buffer.alloc(8 * CHUNK)]), new isec.EncryptStream(key), new isec.DecryptStream(key))
  gc()
  const base = process.memoryUsage().rss
  let peak = base
  let seen = 0
  let n = 0
  const sink = new Writable({
    highWaterMark: CHUNK,
    write(chunk, _e, cb) {
      assert.equal(chunk[0], Math.floor(seen / CHUNK) & 0xff)
      seen += chunk.length
      if (++n % 64 === 0) {
        gc()
        peak = Math.max(peak, process.memoryUsage().rss)
      }
      cb()
    },
  })
  await pipeline(source, new isec.EncryptStream(key), new isec.DecryptStream(key), sink)
  gc()
  peak = Math.max(peak, process.memoryUsage().rss)
  assert.equal(seen, TOTAL)
  const grew = (peak - base) / (1024 * 1024)
  assert.ok(grew < 32, `RSS grew by ${grew.toFixed(1)} MiB`)
})

test('the event loop keeps turning during a large async encrypt and decrypt', async () => {
  const { key } = keyFor()
  const pt = Buffer.alloc(512 * 1024 * 1024, 7)
  let ticks = 0
  let last = performance.now()
  let maxGap = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
    ticks++
  }, 2)
  const started = performance.now()
  const ct = await isec.encrypt(key, pt)
  const back = await isec.decrypt(key, ct)
  const took = performance.now() - started
  clearInterval(timer)
  assert.equal(back.length, pt.length)
  assert.ok(ticks >= Math.min(10, took / 10), `timer fired ${ticks} times in ${took.toFixed(0)} ms`)
  assert.ok(maxGap < 100, `longest pause of the event loop ${maxGap.toFixed(1)} ms`)
})

test('an AbortSignal cancels long async work between chunks', async () => {
  const { key } = keyFor()
  const pt = Buffer.alloc(1024 * 1024 * 1024, 1)
  const ac = new AbortController()
  const started = performance.now()
  const p = isec.encrypt(key, pt, { signal: ac.signal })
  setTimeout(() => ac.abort(new Error('enough')), 20)
  await assert.rejects(p, (e) => e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause.message === 'enough')
  assert.ok(performance.now() - started < 2000)
  // A signal aborted before the call rejects at once; an unused one changes nothing.
  assert.equal(await codeOfAsync(isec.decrypt(key, Buffer.alloc(1), { signal: AbortSignal.abort() })), 'ABORT_ERR')
  const ok = await isec.decrypt(key, await isec.encrypt(key, Buffer.from('x'), { signal: new AbortController().signal }))
  assert.equal(ok.toString(), 'x')
  // A stream pipeline with a signal.
  const ac2 = new AbortController()
  const endless = new Readable({ read() { setImmediate(() => this.push(Buffer.alloc(65536))) } })
  setTimeout(() => ac2.abort(), 20)
  await assert.rejects(
    pipeline(endless, new isec.EncryptStream(key), new Writable({ write(_c, _e, cb) { cb() } }), { signal: ac2.signal }),
    { name: 'AbortError' },
  )
})

// The browser package in headless Chromium: the shared corpus on both backends, and a
// 256 MiB generated Blob streamed through EncryptStream and DecryptStream in bounded memory.
// Pages are served by test/browser/server.mjs on 127.0.0.1.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'

import { serve } from './server.mjs'
import { launch, runPage } from './chromium.js'

let server
let browser
const log = (s) => console.log(s)

before(async () => {
  server = await serve()
  browser = await launch(['--js-flags=--expose-gc'])
})

after(async () => {
  await browser?.close()
  await server?.close()
})

test('Chromium: shared corpus on the webcrypto and wasm backends', async () => {
  const r = await runPage(browser.context, `${server.url}/test/browser/corpus.html`, { log })
  assert.deepEqual(r.backends, ['webcrypto', 'wasm'])
  for (const [backend, rep] of Object.entries(r.reports)) {
    console.log(`chromium corpus [${backend}]: ${rep.passed} checks passed, ${rep.failed} failed; cases ${JSON.stringify(rep.cases)}`)
    assert.deepEqual(rep.failures, [], backend)
    assert.ok(rep.passed > 1000)
  }
})

test('Chromium: 256 MiB Blob through EncryptStream and DecryptStream in bounded memory', async () => {
  const mib = Number(process.env.ISEC_STREAM_MIB ?? 256)
  const r = await runPage(browser.context, `${server.url}/test/browser/stream.html?mib=${mib}`, { log, timeout: 600_000 })
  for (const x of r.results) {
    console.log(`chromium stream [${x.backend}]: ${mib} MiB in ${x.ms} ms (${x.mbPerSecond} MB/s enc+dec), ` +
      `JS heap ${x.heapStartMiB} MiB -> live peak ${x.liveHeapPeakMiB} MiB after GC (first half ${x.liveFirstHalfMiB}, ` +
      `second half ${x.liveSecondHalfMiB}; raw peak ${x.heapPeakMiB} MiB), ` +
      `wasm memory peak ${x.wasmMemoryPeakMiB} MiB`)
    assert.equal(x.ok, true, `${x.backend}: plaintext hash`)
    assert.equal(x.ciphertextBytes, x.ciphertextExpected, `${x.backend}: ciphertext length`)
    assert.ok(x.preciseHeap && x.gcSamples, 'performance.memory and gc() available')
    // Bounded: the live heap (after a full GC, every 16 MiB) reaches a plateau in the first
    // half of the object and does not grow in the second, and stays well below the object's
    // size (the Blob itself lives outside the JS heap). What remains at the plateau is
    // chunk-sized garbage the concurrent ArrayBuffer sweeper has not freed yet; it is the same
    // for 128 and 256 MiB objects.
    assert.ok(x.liveSecondHalfMiB <= x.liveFirstHalfMiB + 16, `${x.backend}: live heap grows: ${x.liveFirstHalfMiB} -> ${x.liveSecondHalfMiB} MiB`)
    assert.ok(x.liveHeapGrowthMiB < mib / 2, `${x.backend}: live JS heap grew ${x.liveHeapGrowthMiB} MiB`)
    assert.ok(x.wasmMemoryPeakMiB < 32, `${x.backend}: wasm memory ${x.wasmMemoryPeakMiB} MiB`)
  }
})

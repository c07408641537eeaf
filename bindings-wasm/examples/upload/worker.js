// Encrypts a File in a Worker and uploads its parts in parallel to presigned multipart URLs.
// Every part is encrypted independently (isec's parts layout), so parts go up in any order,
// several at a time, and a failed part is simply encrypted again (with a fresh nonce prefix)
// and re-sent. Memory: `concurrency` parts in flight. The keyring holds the recipient's public
// key only: the DEK is wrapped to it (HPKE), and nothing here can unwrap it again.
import init from '../../index.js'
import { api, keyring, partSize } from './client.js'

const isecReady = init()

function put(url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('PUT', url)
    xhr.upload.onprogress = (e) => onProgress(e.loaded)
    xhr.onload = () =>
      xhr.status === 200 ? resolve(xhr.getResponseHeader('ETag')) : reject(new Error(`PUT part: ${xhr.status} ${xhr.responseText}`))
    xhr.onerror = () => reject(new Error('PUT part: network error'))
    xhr.send(body)
  })
}

async function upload({ file, key: objectKey, concurrency = 4, backend }) {
  const isec = await isecReady
  const t0 = performance.now()
  const ring = await keyring(isec)
  const frameSize = 65536
  const P = partSize(file.size, frameSize)
  const { envelope, key } = await ring.createEnvelope({ frameSize, partSize: P, declaredSize: file.size })
  const { uploadId } = await api('/api/create', {
    key: objectKey,
    metadata: { isec: envelope.toText(), 'isec-kid': envelope.kid },
  })
  const count = Math.max(1, Math.ceil(file.size / P))
  const total = isec.Shape.forPlaintext(envelope, file.size).ciphertextLength
  const sent = new Map()
  const report = () => postMessage({ type: 'progress', sent: [...sent.values()].reduce((a, b) => a + b, 0), total })
  const etags = new Array(count)
  let next = 1
  async function lane() {
    for (let n = next++; n <= count; n = next++) {
      const pt = new Uint8Array(await file.slice((n - 1) * P, n * P).arrayBuffer())
      for (let attempt = 1; ; attempt++) {
        try {
          const ct = await isec.encryptPart(key, n, n === count, pt, { backend })
          const { url } = await api('/api/presign', { key: objectKey, method: 'PUT', partNumber: n, uploadId })
          etags[n - 1] = await put(url, ct, (loaded) => {
            sent.set(n, loaded)
            report()
          })
          sent.set(n, ct.length)
          report()
          break
        } catch (e) {
          if (attempt >= 3) throw e
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
  await api('/api/complete', { key: objectKey, uploadId, parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })) })
  return { key: objectKey, size: file.size, ciphertextSize: total, parts: count, partSize: P, ms: performance.now() - t0, envelope: envelope.toText() }
}

onmessage = async (e) => {
  try {
    postMessage({ type: 'done', result: await upload(e.data) })
  } catch (err) {
    postMessage({ type: 'error', error: `${err.code ?? ''} ${err.message}` })
  }
}

// The page: pick a file, encrypt and upload it in a Worker with a progress bar. The page
// holds the recipient's public key only, so reading back fails: `downloadRange` (HEAD for the
// envelope and size, one ranged GET of the frames the range needs, decryptRange) and
// `downloadAll` (a DecryptStream) stop at opening the envelope with `public_key_only`. The
// same calls work in a context whose keyring holds the private key.
import init from '../../index.js'
import { api, keyring } from './client.js'

const isec = await init()
const $ = (id) => document.getElementById(id)
const ring = await keyring(isec)

/** Encrypts and uploads `file` under `key` in a Worker; resolves when the upload completes. */
export function upload(file, key, options = {}) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })
    w.onmessage = (e) => {
      const m = e.data
      if (m.type === 'progress') {
        $('bar').max = m.total
        $('bar').value = m.sent
        $('status').textContent = `uploading: ${((100 * m.sent) / m.total).toFixed(1)}%`
      } else if (m.type === 'done') {
        w.terminate()
        resolve(m.result)
      } else {
        w.terminate()
        reject(new Error(m.error))
      }
    }
    w.onerror = (e) => reject(new Error(e.message))
    w.postMessage({ file, key, ...options })
  })
}

async function head(key) {
  const { url } = await api('/api/presign', { key, method: 'HEAD' })
  const r = await fetch(url, { method: 'HEAD' })
  if (!r.ok) throw new Error(`HEAD: ${r.status}`)
  const envelope = isec.Envelope.decodeText(r.headers.get('x-amz-meta-isec'))
  return { envelope, length: Number(r.headers.get('content-length')) }
}

/** Plaintext `[start, end)` of object `key`: one HEAD, one ranged GET of whole frames. */
export async function downloadRange(key, start, end) {
  const { envelope, length } = await head(key)
  const objectKey = await ring.open(envelope)
  let fetched = 0
  const pt = await isec.fetchAndDecryptRange(objectKey, envelope, length, start, end, async (a, b, plan) => {
    const { url } = await api('/api/presign', { key, method: 'GET' })
    const r = await fetch(url, { headers: { range: plan.httpRange } })
    if (r.status !== 206) throw new Error(`ranged GET: ${r.status}`)
    const ct = new Uint8Array(await r.arrayBuffer())
    fetched = ct.length
    return ct
  })
  return { plaintext: pt, fetched, objectLength: length }
}

/** The whole object through a DecryptStream; resolves to its SHA-256 (hex) and size. */
export async function downloadAll(key) {
  const { envelope } = await head(key)
  const objectKey = await ring.open(envelope)
  const { url } = await api('/api/presign', { key, method: 'GET' })
  const r = await fetch(url)
  const blob = await new Response(r.body.pipeThrough(new isec.DecryptStream(objectKey))).blob()
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))
  return { sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), size: blob.size }
}

window.isecDemo = { upload, downloadRange, downloadAll, keys: () => ring.keys() }

$('upload').onclick = async () => {
  const file = $('file').files[0]
  if (!file) return
  const key = `uploads/${Date.now()}-${file.name.replace(/[^\w.-]/g, '_')}`
  $('status').textContent = 'encrypting…'
  try {
    const r = await upload(file, key)
    $('status').textContent = `uploaded ${r.size} bytes as ${r.parts} encrypted parts in ${Math.round(r.ms)} ms: ${key}`
    $('objkey').value = key
    $('end').value = Math.min(r.size, 1024)
    window.__lastUpload = r
  } catch (e) {
    $('status').textContent = `failed: ${e.message}`
    window.__lastUpload = { error: e.message }
  }
}

$('download').onclick = async () => {
  try {
    const r = await downloadRange($('objkey').value, Number($('start').value), Number($('end').value))
    const shown = r.plaintext.subarray(0, 64)
    const hex = Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join(' ')
    const more = r.plaintext.length > shown.length ? '…' : ''
    const text = new TextDecoder('utf-8', { fatal: false }).decode(shown)
    $('range').textContent =
      `${r.plaintext.length} bytes (fetched ${r.fetched} of ${r.objectLength} stored bytes): ${hex}${more}\n` +
      `as text: ${JSON.stringify(text)}${more}`
  } catch (e) {
    $('range').textContent = `failed: ${e.code ?? ''} ${e.message}`
    window.__lastDownload = { code: e.code }
  }
}

// A tiny static server on 127.0.0.1 for the Chromium tests, the example and the benchmark:
// serves the package directory at / and the shared corpus (tests/vectors) at /vectors/, and
// the JavaScript the tests share across packages (tests/js) at /tests/js/, where a test under
// /test/ finds it by its repository-relative path.
// Loopback only; an ephemeral port unless one is given.
import http from 'node:http'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const pkgRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const repoRoot = path.resolve(pkgRoot, '..')

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.ts': 'text/plain',
}

/**
 * Starts the server. `mounts` maps URL prefixes to directories (defaults: / = the package,
 * /vectors/ = tests/vectors, /tests/js/ = tests/js, /benches/ = benches/wasm). Resolves to
 * { url, close }.
 */
export async function serve({ port = 0, mounts = {}, onRequest } = {}) {
  const table = {
    '/vectors/': path.join(repoRoot, 'tests/vectors'),
    '/tests/js/': path.join(repoRoot, 'tests/js'),
    '/benches/': path.join(repoRoot, 'benches/wasm'),
    ...mounts,
    '/': pkgRoot,
  }
  const server = http.createServer(async (req, res) => {
    try {
      if (onRequest && (await onRequest(req, res))) return
      const url = new URL(req.url, 'http://127.0.0.1')
      const prefix = Object.keys(table).find((p) => url.pathname.startsWith(p))
      const base = table[prefix]
      const rel = decodeURIComponent(url.pathname.slice(prefix.length - 1))
      const file = path.resolve(base, '.' + (rel.endsWith('/') ? rel + 'index.html' : rel))
      if (!file.startsWith(base)) throw Object.assign(new Error('outside'), { status: 403 })
      const st = await stat(file)
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { status: 404 })
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
      })
      createReadStream(file).pipe(res)
    } catch (e) {
      res.writeHead(e.status ?? 404, { 'content-type': 'text/plain' })
      res.end(String(e.message))
    }
  })
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve))
  const { port: p } = server.address()
  return {
    url: `http://127.0.0.1:${p}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await serve({ port: Number(process.env.PORT ?? 8787) })
  console.log(`serving ${pkgRoot} at ${s.url}`)
}

// Stages a platform package (@isec/node-<platform>) for `npm pack` / `npm publish`: a copy of
// npm/<platform>/ (package.json, README.md) with the license files and the binary under the
// name its package.json's `main` gives. The committed npm/ directories hold no binaries, so
// one stage serves the release (scripts/build-node-platforms.sh at the repository root) and
// the layout test (test/package.test.mjs).
// Usage: node scripts/stage-platform.mjs <platform, e.g. linux-arm64-gnu> <file.node> <out dir>
//   prints the staged package directory (<out dir>/<platform>)
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')

export function stagePlatform(platform, binary, outRoot) {
  const src = join(pkg, 'npm', platform)
  const manifest = JSON.parse(readFileSync(join(src, 'package.json'), 'utf8'))
  const out = join(outRoot, platform)
  mkdirSync(out, { recursive: true })
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(out, f))
  for (const f of ['LICENSE-MIT', 'LICENSE-APACHE']) copyFileSync(join(pkg, f), join(out, f))
  copyFileSync(binary, join(out, manifest.main))
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [platform, binary, outRoot] = process.argv.slice(2)
  if (!outRoot) {
    console.error('usage: node scripts/stage-platform.mjs <platform> <file.node> <out dir>')
    process.exit(2)
  }
  console.log(stagePlatform(platform, resolve(binary), resolve(outRoot)))
}

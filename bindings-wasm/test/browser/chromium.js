// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core.
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

export const CHROMIUM = process.env.ISEC_CHROMIUM ?? '/usr/bin/chromium'

export async function launch(extraArgs = []) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'isec-chromium-'))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-precise-memory-info',
      ...extraArgs,
    ],
  })
  return {
    context,
    async close() {
      await context.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Opens `url`, waits for `window.__result` (set by the page), returns it. */
export async function runPage(context, url, { timeout = 300_000, log = () => {} } = {}) {
  const page = await context.newPage()
  const errors = []
  page.on('console', (m) => log(`[page] ${m.text()}`))
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(url)
  await page.waitForFunction(() => window.__result !== undefined || window.__error !== undefined, null, { timeout })
  const { result, error } = await page.evaluate(() => ({ result: window.__result, error: window.__error }))
  await page.close()
  if (error !== undefined || errors.length > 0) throw new Error(`page ${url} failed: ${error ?? ''} ${errors.join('; ')}`)
  return result
}

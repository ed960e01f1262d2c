// The main step of a small cache action on GitHub's own client (as actions/cache's): restore `path` from the
// cache of `key`, or of the first `restore-keys` prefix that matches; the post step saves it on a miss.
import * as core from '@actions/core'
import * as cache from '@actions/cache'

async function main() {
  const paths = core.getMultilineInput('path', {required: true})
  const key = core.getInput('key', {required: true})
  const matched = await cache.restoreCache(paths, key, core.getMultilineInput('restore-keys'))
  if (!matched) core.info(`Cache not found for input keys: ${key}`)
  core.setOutput('cache-hit', String(matched === key))
  core.setOutput('cache-matched-key', matched || '')
  core.saveState('key', key)
  core.saveState('matched', matched || '')
  core.saveState('paths', JSON.stringify(paths))
}

main().catch(error => core.setFailed(error.message))

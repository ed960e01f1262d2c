// The post step of the small cache action: save `path` under `key` unless the key itself was restored.
import * as core from '@actions/core'
import * as cache from '@actions/cache'

async function main() {
  const key = core.getState('key')
  if (core.getState('matched') === key) {
    core.info(`Cache hit occurred on the primary key ${key}, not saving cache.`)
    return
  }
  const id = await cache.saveCache(JSON.parse(core.getState('paths')), key)
  if (id !== -1) core.info(`Cache saved with key: ${key}`)
}

main().catch(error => core.setFailed(error.message))

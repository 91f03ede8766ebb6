// js-ipfs 0.66 (and its dependencies) call Promise.withResolvers, which only
// exists natively from Node 22. Loaded with NODE_OPTIONS=--require <this file>.
'use strict'
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve, reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

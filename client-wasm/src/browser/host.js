// The calls the wasm core makes to its host (src/browser/mod.rs has the table), handed to the
// socket whose core is running: `Driver` (socket.js) sets it around every call into the core.
// The driver only queues what it hears here; it acts once the core's call has returned.

/** The driver whose core is running, or undefined. */
let currentDriver;

/** Makes `driver` the one the core's calls go to; returns the previous one. */
export function setDriver(driver) {
  const previous = currentDriver;
  currentDriver = driver;
  return previous;
}

export function hostSend(kind, channel, push, joinRef, ref) {
  currentDriver.send(kind, channel, push, joinRef, ref);
}

export function hostEmit(kind, channel, push, code) {
  currentDriver.emit(kind, channel, push, code);
}

export function hostClose(code, reason) {
  currentDriver.close(code, reason);
}

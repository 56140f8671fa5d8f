// fs-native-extensions 1.5.1 ships no types: these are the calls taskbase makes, as its README
// documents them.
declare module 'fs-native-extensions' {
  /**
   * Locks the whole file, exclusively unless `shared`: true when granted, false when another open
   * file description holds a conflicting lock. Throws on any other error.
   */
  export function tryLock (fd: number, options?: { shared?: boolean }): boolean
}

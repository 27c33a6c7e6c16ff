/**
 * Types of flechette's ES-module bundle. kappa imports `@uwdata/flechette/dist/flechette.mjs`
 * rather than the bare package name, whose `main` is the CommonJS bundle: Node loads that one
 * through its CommonJS loader and export lexer, about 50 ms of start-up CPU in every stage against
 * about 5 ms for the ES module (measured on Node 20, issue 14). Both are the same release built
 * from the same source; the package declares no `exports`, so the path is importable. Every
 * import in src/ must use this one path, or two copies of the library would be loaded.
 */
declare module '@uwdata/flechette/dist/flechette.mjs' {
  export * from '@uwdata/flechette';
}

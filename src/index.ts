export * from "./errors.js";
export * from "./node/index.js";
export * from "./master/index.js";
export * from "./worker/index.js";

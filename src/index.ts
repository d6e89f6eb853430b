export * from "./errors.js";
export * from "./node/index.js";

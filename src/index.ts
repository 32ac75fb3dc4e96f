/** textpoke library entry point. */
export {};

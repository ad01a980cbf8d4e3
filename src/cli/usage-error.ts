// A mistake in how the command was called (unknown option, missing folder, bad config): the CLI prints it on one
// line and exits with status 2, as command-line tools conventionally do for usage errors.
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

// Reading editor fields as the flow file saves them: numbers may arrive as text (or as text substituted from
// `${ENV}`), lists as comma-separated text. Validation stays in the core, whose errors quote the value.

/** Empty means "use the default"; numeric text becomes a number; anything else goes to the core as is, whose
 * validation error then quotes it (`"k" must be a positive number … (got "abc")`). */
export function numberField(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  return value as number;
}

/** "a, b,,c" -> ["a", "b", "c"]; empty or absent -> []. */
export function listField(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

// NAB's scoring profiles (cost matrices): the three built in to NAB, or those of a corpus's config/profiles.json.

/** Weights of one profile: reward of an early true positive, cost of a false positive and of a missed window. */
export interface NabProfile {
  name: string;
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** NAB's config/profiles.json, used when a corpus has none. */
export const NAB_DEFAULT_PROFILES: readonly NabProfile[] = Object.freeze([
  { name: "standard", tpWeight: 1, fpWeight: 0.11, fnWeight: 1 },
  { name: "reward_low_FP_rate", tpWeight: 1, fpWeight: 0.22, fnWeight: 1 },
  { name: "reward_low_FN_rate", tpWeight: 1, fpWeight: 0.11, fnWeight: 2 },
]);

/**
 * Profiles from the text of a profiles.json (`{"<name>": {"CostMatrix": {"tpWeight": 1, "fpWeight": 0.11,
 * "fnWeight": 1, …}}}`); `source` names the file in errors.
 */
export function parseNabProfiles(text: string, source = "profiles.json"): NabProfile[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${source} must hold an object of profiles keyed by name`);
  }
  const profiles: NabProfile[] = [];
  for (const [name, profile] of Object.entries(parsed as Record<string, unknown>)) {
    const matrix = (profile as { CostMatrix?: Record<string, unknown> } | null)?.CostMatrix;
    if (matrix === null || typeof matrix !== "object") throw new Error(`${source}: profile "${name}" has no "CostMatrix" object`);
    const weight = (field: string): number => {
      const value = matrix[field];
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new Error(`${source}: profile "${name}" needs "CostMatrix.${field}" as a number ≥ 0 (got ${JSON.stringify(value)})`);
      }
      return value;
    };
    profiles.push({ name, tpWeight: weight("tpWeight"), fpWeight: weight("fpWeight"), fnWeight: weight("fnWeight") });
  }
  if (profiles.length === 0) throw new Error(`${source} holds no profile`);
  return profiles;
}

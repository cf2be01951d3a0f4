import { Flags } from '@oclif/core';

/** The MAC flag in the seeds' spelling; flags are case-sensitive, so the lower-case form is an alias (FIELD-NOTES). */
export const macFlag = (description: string, required: boolean) =>
  Flags.string({ description, aliases: ['mac'], required });

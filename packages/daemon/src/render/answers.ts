import type { RenderContext } from './context.ts';

/** The answer files a machine may fetch from /answers/<mac>/<token>/<name>, by name. */
export const answerFiles: Record<
  string,
  { contentType: string; render: (context: RenderContext) => string } | undefined
> = {};

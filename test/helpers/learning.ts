/** Config blocks for tests of a gateway that learns (adaptive limits) from its analytics. */

/** The `analytics:` block of a learning gateway: one-second buckets and analyses, a 20 s window, 10 min retention. */
export const LEARNING_ANALYTICS = `analytics:
  enabled: true
  bucket_interval: 1s
  analyzer_interval: 1s
  window: 20s
  retention: 10m
`;

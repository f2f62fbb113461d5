/** An error a middleware passed on: body-parser's carry a status, a `type` and what they refused. */
export interface MiddlewareError {
  readonly status?: number;
  readonly type?: string;
  readonly encoding?: string;
  readonly charset?: string;
}

/**
 * The code a body the parser refused (a 4xx error of body-parser) is answered and recorded with, wherever it
 * was sent: `/graphql` and the privacy page's forms alike.
 */
export function bodyRefusalCode(error: MiddlewareError): 'PAYLOAD_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'BAD_REQUEST' {
  if (error.status === 413) return 'PAYLOAD_TOO_LARGE';
  // body-parser's own names for these refusals (its `type`), which carry the encoding or charset refused.
  if (error.type === 'encoding.unsupported' || error.type === 'charset.unsupported') return 'UNSUPPORTED_MEDIA_TYPE';
  return 'BAD_REQUEST';
}

/** A minimal authenticated JSON call against a running smeltd, for tests that check the API directly. */
export async function api(
  daemon: { url: string; token: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; contentType: string }> {
  const response = await fetch(`${daemon.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${daemon.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? undefined : (JSON.parse(text) as unknown),
    contentType: response.headers.get('content-type') ?? '',
  };
}

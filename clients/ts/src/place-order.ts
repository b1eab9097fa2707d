// A storefront's placement, typed by the types openapi-typescript generates from the
// committed document (`npm run generate` → generated/oms-api.ts). `npm run check` compiles
// it with `tsc --noEmit`: a change to the document that breaks this call fails CI.
import type { components, paths } from "../generated/oms-api";

type Schemas = components["schemas"];

/** The JSON operations of a method: each path's body, 2xx answer and headers, by path. */
type Post = { [P in keyof paths]: paths[P]["post"] extends { responses: unknown } ? P : never }[keyof paths];
type PostOp<P extends Post> = NonNullable<paths[P]["post"]>;
type JsonBody<P extends Post> = PostOp<P> extends { requestBody?: { content: { "application/json": infer B } } }
  ? B
  : never;
type Answer<P extends Post> = {
  [S in keyof PostOp<P>["responses"]]: S extends 200 | 201
    ? PostOp<P>["responses"][S] extends { content: { "application/json": infer R } }
      ? R
      : never
    : never;
}[keyof PostOp<P>["responses"]];
type Headers<P extends Post> = PostOp<P>["parameters"] extends { header?: infer H } ? NonNullable<H> : never;

export type Problem = Schemas["ProblemDetail"];
export type Result<T> = { ok: true; status: number; data: T } | { ok: false; status: number; problem: Problem };

export class OmsApiError extends Error {}

/** A POST to the API with its body, headers and answer typed from the document. */
export async function post<P extends Post>(
  base: string,
  apiKey: string,
  path: P,
  body: JsonBody<P>,
  headers?: Headers<P>,
): Promise<Result<Answer<P>>> {
  const response = await fetch(base + path, {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (response.ok) {
    return { ok: true, status: response.status, data: (await response.json()) as Answer<P> };
  }
  if (response.headers.get("content-type")?.startsWith("application/problem+json")) {
    return { ok: false, status: response.status, problem: (await response.json()) as Problem };
  }
  throw new OmsApiError(`${response.status} without a problem document`);
}

/** Place an order from a storefront: the call a checkout makes. */
export async function placeOrder(base: string, apiKey: string, cartId: string): Promise<Schemas["OrderPublic"]> {
  const shipTo: Schemas["Address"] = {
    name: "Ada Lovelace",
    line1: "12 St James's Sq",
    city: "London",
    postal_code: "SW1Y 4JH",
    country: "GB",
  };
  const result = await post(
    base,
    apiKey,
    "/v1/orders",
    {
      external_id: `WEB-${cartId}`,
      customer: { email: "ada@example.com", name: "Ada Lovelace" },
      lines: [{ sku: "TSHIRT-M-RED", quantity: 2 }],
      shipping_address: shipTo,
      shipping_price: 490,
      payment: { method: "card", status: "authorized", reference: "pi_3Nx" },
    },
    { "Idempotency-Key": cartId },
  );
  if (!result.ok) {
    // 409 insufficient_stock and the others: a problem document with a machine-readable code.
    throw new OmsApiError(`${result.problem.code}: ${result.problem.detail ?? result.problem.title}`);
  }
  const order = result.data; // OrderPublic
  const status: Schemas["OrderStatus"] = order.status;
  const city: string | undefined = order.shipping_address?.city; // a typed address
  console.log(`order #${order.number} ${status}, ${order.totals.total} ${order.currency} to ${city}`);
  return order;
}

// The types hold: each line below fails to compile if its error went away.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const placementAnswersAnOrder: Equal<Answer<"/v1/orders">, Schemas["OrderPublic"]> = true;
export const placementTakesAnOrder: Equal<JsonBody<"/v1/orders">, Schemas["OrderCreate"]> = true;
export async function mistakes(base: string, apiKey: string): Promise<void> {
  // @ts-expect-error an order needs its lines
  await post(base, apiKey, "/v1/orders", { customer: { email: "ada@example.com" } });
  // @ts-expect-error a quantity is a number
  await post(base, apiKey, "/v1/orders", { lines: [{ sku: "TSHIRT-M-RED", quantity: "2" }] });
  // @ts-expect-error no such path
  await post(base, apiKey, "/v1/order", { lines: [] });
  const result = await post(base, apiKey, "/v1/orders", { lines: [{ sku: "MUG", quantity: 1 }] });
  // @ts-expect-error an order has no `tracking_number` (its shipments do)
  if (result.ok) console.log(result.data.tracking_number);
}

// A tiny HTTP handler, to show TypeScript highlighting.
interface Reply {
  status: number;
  body: string;
}

export function handle(path: string): Reply {
  if (path === "/health") {
    return { status: 200, body: "ok" };
  }
  return { status: 404, body: `no route for ${path}` };
}

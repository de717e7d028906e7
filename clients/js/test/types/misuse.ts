// Calls the types must refuse: types.test.mjs expects tsc to fail here,
// once for each line marked "error".
import { TinyvexClient } from "../../tinyvex.js";

const client = new TinyvexClient("ws://127.0.0.1:7878/sync");
client.subscribe("db/query", "not an object", () => undefined);	// error
client.paginate({ table: "m" }, {}, () => undefined);		// error
client.mutation("db/insert", { table: "m", doc: { when: new Date() } });	// error
const n: number = client.connectionState().status;		// error
void n;

// SCIM 2.0 conformance of Gatehouse checked against a third-party SCIM
// implementation, SCIMMY (npm "scimmy"): its RFC 7643 schema definitions
// validate every resource Gatehouse serves, request bodies are built with
// it, and its filter evaluator is the oracle for a differential filter test.
//
// Env: GH_BASE (http://host:port), GH_ORG, GH_SCIM_TOKEN (a ghs_ token).
// Prints a JSON summary on the last stdout line; exits 1 on any mismatch,
// with one line per problem on stderr.

import SCIMMY from "scimmy";

const BASE = process.env.GH_BASE;
const ORG = process.env.GH_ORG;
const TOKEN = process.env.GH_SCIM_TOKEN;
if (!BASE || !ORG || !TOKEN) {
    console.error("GH_BASE, GH_ORG and GH_SCIM_TOKEN are required");
    process.exit(2);
}
const ROOT = `${BASE}/o/${ORG}/scim/v2`;

const CORE = SCIMMY.Schemas.User.definition.id;
const ENT = SCIMMY.Schemas.EnterpriseUser.definition.id;
const GROUP = SCIMMY.Schemas.Group.definition.id;
const LIST = SCIMMY.Messages.ListResponse.id;
const ERROR = SCIMMY.Messages.ErrorResponse.id;
const PATCH = SCIMMY.Messages.PatchOp.id;

// Users carry the enterprise extension (optional, as Gatehouse declares it).
SCIMMY.Schemas.User.extend(SCIMMY.Schemas.EnterpriseUser, false);

const problems = [];
const summary = {};
const fail = (section, msg) => problems.push(`${section}: ${msg}`);
const count = (section) => { summary[section] = (summary[section] ?? 0) + 1; };

async function call(method, path, body) {
    const r = await fetch(ROOT + path, {
        method,
        headers: {
            "Authorization": `Bearer ${TOKEN}`,
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json",
        },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* kept null */ }
    const ct = r.headers.get("content-type") ?? "";
    if (text && !ct.startsWith("application/scim+json"))
        fail("http", `${method} ${path}: content type ${ct}`);
    return { status: r.status, json, text, headers: r.headers };
}

function expectStatus(section, what, r, status) {
    if (r.status === status) return true;
    fail(section, `${what}: status ${r.status} (expected ${status}): ${r.text.slice(0, 300)}`);
    return false;
}

// Runs SCIMMY's definition over a resource as an outbound (server -> client)
// representation; SCIMMY throws on a type, required or multi-valued
// violation. SCIMMY drops unknown attributes silently, so the top-level names
// are checked against the definition too.
function validate(section, what, definition, resource, extensions = []) {
    try {
        definition.coerce(resource, "out");
    } catch (e) {
        fail(section, `${what}: SCIMMY rejects it: ${e.message}`);
        return false;
    }
    const known = new Set(definition.attributes.map((a) => a.name));
    for (const ext of extensions) known.add(ext);
    for (const key of Object.keys(resource))
        if (!known.has(key))
            fail(section, `${what}: attribute "${key}" is not in ${definition.id}`);
    for (const ext of extensions)
        if (resource[ext] !== undefined && !resource.schemas.includes(ext))
            fail(section, `${what}: carries ${ext} without listing it in schemas`);
    count(section);
    return true;
}

function validateList(section, what, body) {
    let list;
    try {
        list = new SCIMMY.Messages.ListResponse(body);
    } catch (e) {
        fail(section, `${what}: SCIMMY rejects the ListResponse: ${e.message}`);
        return null;
    }
    for (const k of ["totalResults", "startIndex", "itemsPerPage"])
        if (!Number.isInteger(body[k]) || list[k] !== body[k])
            fail(section, `${what}: ${k} is ${JSON.stringify(body[k])}`);
    if (!Array.isArray(body.Resources))
        fail(section, `${what}: Resources is not an array`);
    else if (body.itemsPerPage !== body.Resources.length)
        fail(section, `${what}: itemsPerPage ${body.itemsPerPage} but ${body.Resources.length} Resources`);
    return body;
}

function validateError(section, what, r, status, scimType) {
    if (!expectStatus(section, what, r, status)) return;
    const b = r.json ?? {};
    let made;
    try {
        made = new SCIMMY.Messages.ErrorResponse({
            status: Number(b.status), scimType: b.scimType, detail: b.detail });
    } catch (e) {
        fail(section, `${what}: SCIMMY rejects the error: ${e.message}: ${r.text}`);
        return;
    }
    if (JSON.stringify(b.schemas) !== JSON.stringify([ERROR]))
        fail(section, `${what}: schemas ${JSON.stringify(b.schemas)}`);
    if (b.status !== String(status) || made.status !== b.status)
        fail(section, `${what}: status "${b.status}" is not the string "${status}"`);
    if (b.scimType !== scimType)
        fail(section, `${what}: scimType ${b.scimType} (expected ${scimType})`);
    if (typeof b.detail !== "string" || !b.detail)
        fail(section, `${what}: no detail`);
    count(section);
}

// ---- (a) discovery ------------------------------------------------------

async function discovery() {
    const S = "discovery";
    let r = await call("GET", "/ServiceProviderConfig");
    if (expectStatus(S, "ServiceProviderConfig", r, 200)) {
        const spc = r.json;
        validate(S, "ServiceProviderConfig", SCIMMY.Schemas.ServiceProviderConfig.definition, spc);
        const want = { patch: true, filter: true, bulk: false, sort: false,
                       changePassword: false, etag: true };
        for (const [k, v] of Object.entries(want))
            if (spc[k]?.supported !== v)
                fail(S, `ServiceProviderConfig ${k}.supported is ${spc[k]?.supported}, docs say ${v}`);
        if (spc.filter?.maxResults !== 200)
            fail(S, `filter.maxResults ${spc.filter?.maxResults}, docs say 200`);
    }

    r = await call("GET", "/ResourceTypes");
    if (expectStatus(S, "ResourceTypes", r, 200) && validateList(S, "ResourceTypes", r.json)) {
        const byId = Object.fromEntries(r.json.Resources.map((t) => [t.id, t]));
        for (const t of r.json.Resources)
            validate(S, `ResourceType ${t.id}`, SCIMMY.Schemas.ResourceType.definition, t);
        if (byId.User?.schema !== CORE || byId.User?.endpoint !== "/Users")
            fail(S, `ResourceType User: ${JSON.stringify(byId.User)}`);
        if (!byId.User?.schemaExtensions?.some((e) => e.schema === ENT))
            fail(S, "ResourceType User does not name the enterprise extension");
        if (byId.Group?.schema !== GROUP || byId.Group?.endpoint !== "/Groups")
            fail(S, `ResourceType Group: ${JSON.stringify(byId.Group)}`);
        const one = await call("GET", "/ResourceTypes/User");
        if (expectStatus(S, "ResourceTypes/User", one, 200) && one.json.schema !== CORE)
            fail(S, "ResourceTypes/User is not the User type");
    }

    r = await call("GET", "/Schemas");
    if (expectStatus(S, "Schemas", r, 200) && validateList(S, "Schemas", r.json)) {
        // Each schema Gatehouse describes is compared attribute by attribute
        // with SCIMMY's own RFC 7643 definition of it.
        const ours = { [CORE]: SCIMMY.Schemas.User, [ENT]: SCIMMY.Schemas.EnterpriseUser,
                       [GROUP]: SCIMMY.Schemas.Group };
        const seen = new Set();
        for (const sch of r.json.Resources) {
            seen.add(sch.id);
            const def = ours[sch.id];
            if (!def) { fail(S, `unexpected schema ${sch.id}`); continue; }
            compareSchema(S, sch, def.definition.describe());
            const one = await call("GET", `/Schemas/${sch.id}`);
            if (expectStatus(S, `Schemas/${sch.id}`, one, 200) && one.json.id !== sch.id)
                fail(S, `Schemas/${sch.id} answers ${one.json.id}`);
        }
        for (const id of Object.keys(ours))
            if (!seen.has(id)) fail(S, `schema ${id} is missing`);
    }
    const missing = await call("GET", "/Schemas/urn:nope");
    expectStatus(S, "unknown schema", missing, 404);
}

function compareSchema(S, served, reference) {
    const ref = Object.fromEntries(reference.attributes.map((a) => [a.name, a]));
    const fields = ["type", "multiValued", "caseExact", "mutability", "returned", "uniqueness"];
    // RFC 7643 section 3.1: id, externalId and meta are common attributes
    // of every resource, which SCIMMY's schema definitions (as the RFC's own
    // section 8.7 examples) leave out; Gatehouse also describes externalId
    // in the core User schema, which is not a conflict.
    const common = new Set(["id", "externalId", "meta"]);
    const walk = (attrs, refs, prefix) => {
        for (const a of attrs ?? []) {
            const want = refs[a.name];
            if (!prefix && common.has(a.name)) continue;
            const name = `${served.id} ${prefix}${a.name}`;
            if (!want) { fail(S, `${name}: not an attribute of SCIMMY's definition`); continue; }
            for (const f of fields)
                if (a[f] !== undefined && want[f] !== undefined && a[f] !== want[f])
                    fail(S, `${name}: ${f} is ${JSON.stringify(a[f])}, SCIMMY says ${JSON.stringify(want[f])}`);
            if (a.subAttributes)
                walk(a.subAttributes,
                     Object.fromEntries((want.subAttributes ?? []).map((s) => [s.name, s])),
                     `${prefix}${a.name}.`);
        }
    };
    walk(served.attributes, ref, "");
    count(S);
}

// ---- (b) users ----------------------------------------------------------

const PEOPLE = [
    // userName, given, family, active, email type, department, employeeNumber
    ["alice@example.com", "Alice", "Smith", true, "work", "Research", "1001"],
    ["bob@example.com", "Bob", "Jones", true, "work", "Sales", "1002"],
    ["carol@example.org", "Carol", "Smith", false, "home", "Research", "1003"],
    ["dave@example.com", "Dave", "Stone", true, "work", "Ops", "1004"],
    ["erin@example.org", "Erin", "Malone", true, "other", null, "1005"],
    ["frank@example.com", "Frank", "Smithers", false, "work", "Sales", null],
    ["grace@example.com", "Grace", "Hopper", true, "work", "Research", "1007"],
    ["heidi@example.org", "Heidi", "Klum", true, null, "Ops", "1008"],
    ["ivan@example.com", "Ivan", null, true, "work", null, null],
    ["judy@example.com", null, "Dench", false, "work", "Sales", "1010"],
    ["Mallory@Example.com", "Mallory", "Stone", true, "work", "Security", "1011"],
    ["oscar@example.org", "Oscar", "Wilde", true, "home", "Research", "1012"],
];

function userBody(p, i, managerId) {
    const [userName, given, family, active, emailType, dept, emp] = p;
    const data = { schemas: [CORE], userName, active };
    if (i % 3 !== 2) data.externalId = `EXT-${String(i).padStart(4, "0")}`;
    if (given || family) {
        data.name = {};
        if (given) data.name.givenName = given;
        if (family) data.name.familyName = family;
        data.displayName = [given, family].filter(Boolean).join(" ");
    }
    if (emailType) {
        data.emails = [{ value: userName.toLowerCase(), type: emailType, primary: true }];
        if (i % 4 === 0) data.emails.push({ value: `alt${i}@example.net`, type: "other" });
    }
    const ent = {};
    if (dept) ent.department = dept;
    if (emp) ent.employeeNumber = emp;
    if (managerId && i % 2 === 1) ent.manager = { value: managerId };
    if (Object.keys(ent).length) {
        data.schemas.push(ENT);
        data[ENT] = ent;
    }
    // Built and checked by SCIMMY as a client request ("in" direction).
    return JSON.parse(JSON.stringify(new SCIMMY.Schemas.User(data, "in")));
}

function checkRoundTrip(S, sent, got) {
    const what = `user ${sent.userName}`;
    const same = (a, b, attr) => {
        if (JSON.stringify(a ?? null) !== JSON.stringify(b ?? null))
            fail(S, `${what}: ${attr} sent ${JSON.stringify(a)} answered ${JSON.stringify(b)}`);
    };
    same(sent.userName, got.userName, "userName");
    same(sent.active, got.active, "active");
    same(sent.externalId, got.externalId, "externalId");
    same(sent.name?.givenName, got.name?.givenName, "name.givenName");
    same(sent.name?.familyName, got.name?.familyName, "name.familyName");
    // Known limit (docs/api.md, Users): one address is kept, the primary
    // one, and it is answered as the "work" address.
    same(sent.emails?.find((e) => e.primary)?.value, got.emails?.[0]?.value, "primary email");
    for (const k of ["department", "employeeNumber"])
        same(sent[ENT]?.[k], got[ENT]?.[k], `enterprise ${k}`);
    same(sent[ENT]?.manager?.value, got[ENT]?.manager?.value, "enterprise manager.value");
    if (got.meta?.resourceType !== "User" || !got.meta?.location?.endsWith(`/Users/${got.id}`))
        fail(S, `${what}: meta ${JSON.stringify(got.meta)}`);
}

async function users() {
    const S = "users";
    const made = [];
    let managerId = null;
    for (const [i, p] of PEOPLE.entries()) {
        const body = userBody(p, i, managerId);
        const r = await call("POST", "/Users", body);
        if (!expectStatus(S, `POST ${p[0]}`, r, 201)) continue;
        validate(S, `created ${p[0]}`, SCIMMY.Schemas.User.definition, r.json, [ENT]);
        if (r.headers.get("location") === null || r.headers.get("etag") !== r.json.meta?.version)
            fail(S, `${p[0]}: Location/ETag headers missing or not meta.version`);
        checkRoundTrip(S, body, r.json);
        made.push(r.json);
        managerId ??= r.json.id;
        // A moment between creations spreads meta.lastModified for (c).
        if (i % 4 === 3) await new Promise((ok) => setTimeout(ok, 1100));
    }
    for (const u of made) {
        const r = await call("GET", `/Users/${u.id}`);
        if (expectStatus(S, `GET ${u.userName}`, r, 200))
            validate(S, `read ${u.userName}`, SCIMMY.Schemas.User.definition, r.json, [ENT]);
    }
    summary.users_created = made.length;
    return made;
}

// ---- (c) differential filters -------------------------------------------

// RFC 7643: these are caseExact; every other string Gatehouse serves is not
// (userName, emails.value, name parts, enterprise strings...), and RFC 7644
// section 3.4.2.2 says comparisons follow caseExact. SCIMMY's match()
// compares strings case-sensitively whatever the schema says, so the oracle
// runs on a copy where the non-caseExact strings, on both sides, are
// lower-cased. meta holds dateTimes and caseExact strings and is kept as is.
const EXACT = new Set(["id", "externalid", "meta", "version", "$ref"]);

function lowerData(v, exact) {
    if (typeof v === "string") return exact ? v : v.toLowerCase();
    if (Array.isArray(v)) return v.map((x) => lowerData(x, exact));
    if (v && typeof v === "object")
        return Object.fromEntries(Object.entries(v).map(
            ([k, x]) => [k, lowerData(x, exact || EXACT.has(k.toLowerCase()))]));
    return v;
}

function oracleUser(u) {
    const o = lowerData(u, false);
    // SCIMMY's match() throws on a value path or sub-attribute of an absent
    // complex attribute; absent is the same as empty for every operator.
    o.emails ??= [];
    o.name ??= {};
    o[ENT] ??= {};
    // SCIMMY's parser keeps a URN-prefixed path as one flat name
    // ("urn:...:User:department") that match() only finds as a key of its
    // own; RFC 7644 section 3.10 makes it the same attribute.
    for (const [k, x] of Object.entries(o[ENT])) o[`${ENT}:${k}`] = x;
    o[`${ENT}:manager`] ??= {};
    for (const [k, x] of Object.entries(o))
        if (!k.startsWith("urn:") && k !== "schemas") o[`${CORE}:${k}`] = x;
    return o;
}

function lowerFilter(node, exact) {
    if (Array.isArray(node)) {
        if (node.every(Array.isArray)) return node.map((e) => lowerFilter(e, exact));
        if (typeof node[0] === "string") {
            const e = [...node];
            const last = e.length - 1;
            if (last > 0 && typeof e[last] === "string" && !exact) e[last] = e[last].toLowerCase();
            return e;
        }
        return node.map((e) => lowerFilter(e, exact));
    }
    if (node && typeof node === "object")
        return Object.fromEntries(Object.entries(node).map(([k, x]) => {
            const name = k.toLowerCase().split(":").pop();
            return [k, lowerFilter(x, exact || EXACT.has(name))];
        }));
    return node;
}

async function listAll(path, params = "") {
    const out = [];
    for (let start = 1; ; ) {
        const sep = params ? "&" : "";
        const r = await call("GET", `${path}?${params}${sep}startIndex=${start}&count=200`);
        if (r.status !== 200) return { status: r.status, r };
        out.push(...r.json.Resources);
        if (r.json.Resources.length === 0 || out.length >= r.json.totalResults)
            return { status: 200, resources: out, total: r.json.totalResults };
        start += r.json.Resources.length;
    }
}

async function filters(made) {
    const S = "filters";
    const all = await listAll("/Users");
    if (all.status !== 200) { fail(S, `unfiltered list: ${all.status}`); return; }
    for (const u of all.resources)
        validate("users", `listed ${u.userName}`, SCIMMY.Schemas.User.definition, u, [ENT]);
    const oracle = all.resources.map(oracleUser);
    const byName = (n) => made.find((u) => u.userName === n);
    const times = [...new Set(made.map((u) => u.meta.lastModified))].sort();
    const mid = times[Math.floor(times.length / 2)];
    const manager = made[0].id;
    const exprs = [
        'userName eq "bob@example.com"',
        'userName eq "BOB@Example.COM"',              // userName is not caseExact
        'USERNAME Eq "mallory@example.com"',           // names and operators in any case
        'userName ne "bob@example.com"',
        'userName co "AR"',
        'userName sw "da"',
        'userName ew "@example.org"',
        'externalId pr',
        'externalId eq "EXT-0003"',
        'externalId eq "ext-0003"',                    // externalId is caseExact
        `id eq "${byName("dave@example.com")?.id}"`,
        'active eq false',
        'not (active eq true)',
        'active eq true and name.familyName eq "smith"',
        'name.givenName sw "a" or name.familyName co "ONE"',
        '(userName sw "a" or userName sw "b") and active eq true',
        'not (userName sw "a") and not (active eq false)',
        'displayName co "smith"',
        'userName gt "l"',                             // ordering ignores case too
        'userName le "C"',
        'name.givenName ne "alice"',                   // ne holds where absent
        'active ne true or title pr',
        `meta.created lt "${mid}"`,
        // RFC 7644's filter grammar has no sub-attribute after a value path
        // (emails[...].value is a PATCH path only); the filter form is:
        'emails[type eq "work" and value ew "@example.org"]',
        'emails[type eq "work" and value co "grace"]',
        'emails.value co "ERIN"',
        'name.familyName pr and not (name.givenName pr)',
        `meta.lastModified gt "${mid}"`,
        `meta.lastModified ge "${mid}"`,
        `meta.lastModified lt "${mid}"`,
        `meta.lastModified le "${mid}"`,
        `${ENT}:department eq "research"`,
        `${ENT}:department pr and ${ENT}:employeeNumber ge "1005"`,
        `${ENT}:manager.value eq "${manager}"`,
        `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "E"`,
        `${ENT.toUpperCase().replace("URN:", "urn:")}:DEPARTMENT eq "sales"`,
    ];
    const results = [];
    for (const expr of exprs) {
        let want;
        try {
            const parsed = new SCIMMY.Types.Filter(expr);
            const lowered = new SCIMMY.Types.Filter(lowerFilter([...parsed], false));
            want = new Set(lowered.match(oracle).map((u) => u.id));
        } catch (e) {
            fail(S, `${expr}: SCIMMY cannot evaluate it: ${e.message}`);
            continue;
        }
        const got = await listAll("/Users", `filter=${encodeURIComponent(expr)}`);
        if (got.status !== 200) {
            fail(S, `${expr}: status ${got.status}: ${got.r.text.slice(0, 200)}`);
            continue;
        }
        const gotIds = new Set(got.resources.map((u) => u.id));
        const name = (id) => all.resources.find((u) => u.id === id)?.userName ?? id;
        const extra = [...gotIds].filter((id) => !want.has(id)).map(name);
        const lost = [...want].filter((id) => !gotIds.has(id)).map(name);
        if (got.total !== gotIds.size)
            fail(S, `${expr}: totalResults ${got.total} but ${gotIds.size} resources`);
        if (extra.length || lost.length)
            fail(S, `${expr}: Gatehouse also returns [${extra}] and misses [${lost}] (SCIMMY)`);
        results.push({ filter: expr, matched: gotIds.size });
        count(S);
    }
    if (results.every((x) => x.matched === 0) || results.every((x) => x.matched === all.total))
        fail(S, "every filter selects the same set: the test data does not discriminate");
    summary.filter_results = results;
}

// ---- (d) groups ---------------------------------------------------------

function patchBody(ops) {
    // Built and checked by SCIMMY as a client request.
    return JSON.parse(JSON.stringify(new SCIMMY.Messages.PatchOp({ schemas: [PATCH], Operations: ops })));
}

async function groups(made) {
    const S = "groups";
    const body = JSON.parse(JSON.stringify(new SCIMMY.Schemas.Group({
        schemas: [GROUP], displayName: "Conformance Engineers", externalId: "grp-1",
        members: [{ value: made[0].id }] }, "in")));
    let r = await call("POST", "/Groups", body);
    if (!expectStatus(S, "POST group", r, 201)) return;
    const g = r.json;
    validate(S, "created group", SCIMMY.Schemas.Group.definition, g);
    const members = (x) => (x.members ?? []).map((m) => m.value).sort();
    if (JSON.stringify(members(g)) !== JSON.stringify([made[0].id]))
        fail(S, `created members ${JSON.stringify(g.members)}`);

    const add = [made[1].id, made[2].id, made[3].id];
    r = await call("PATCH", `/Groups/${g.id}`, patchBody([
        { op: "add", path: "members", value: add.map((value) => ({ value })) }]));
    if (expectStatus(S, "PATCH add members", r, 200)) {
        validate(S, "patched group", SCIMMY.Schemas.Group.definition, r.json);
        const want = [made[0].id, ...add].sort();
        if (JSON.stringify(members(r.json)) !== JSON.stringify(want))
            fail(S, `after add: ${JSON.stringify(members(r.json))}`);
        for (const m of r.json.members ?? [])
            if (m.type !== "User" || !m.$ref?.endsWith(`/Users/${m.value}`))
                fail(S, `member ${JSON.stringify(m)}: type or $ref wrong`);
    }
    r = await call("PATCH", `/Groups/${g.id}`, patchBody([
        { op: "remove", path: `members[value eq "${made[1].id}"]` },
        { op: "replace", path: "displayName", value: "Conformance Eng" }]));
    if (expectStatus(S, "PATCH remove member", r, 200)) {
        validate(S, "patched group", SCIMMY.Schemas.Group.definition, r.json);
        const want = [made[0].id, made[2].id, made[3].id].sort();
        if (JSON.stringify(members(r.json)) !== JSON.stringify(want))
            fail(S, `after remove: ${JSON.stringify(members(r.json))}`);
        if (r.json.displayName !== "Conformance Eng")
            fail(S, `displayName ${r.json.displayName}`);
    }
    const list = await call("GET", `/Groups?filter=${encodeURIComponent(`members.value eq "${made[2].id}"`)}`);
    if (expectStatus(S, "group filter", list, 200) && validateList(S, "groups list", list.json)) {
        if (!list.json.Resources.some((x) => x.id === g.id))
            fail(S, "filter members.value eq does not find the group");
        for (const x of list.json.Resources)
            validate(S, `listed group ${x.displayName}`, SCIMMY.Schemas.Group.definition, x);
    }
}

// ---- (e) errors ---------------------------------------------------------

async function errors(made) {
    const S = "errors";
    for (const bad of ['userName eq', 'userName zz "x"', '(userName eq "a"', 'emails[type eq "work"'])
        validateError(S, `filter ${bad}`, await call("GET", `/Users?filter=${encodeURIComponent(bad)}`),
                      400, "invalidFilter");
    const dup = userBody(["BOB@EXAMPLE.COM", "Bob", "Again", true, "work", null, null], 2, null);
    validateError(S, "duplicate userName", await call("POST", "/Users", dup), 409, "uniqueness");
    validateError(S, "userName change", await call("PATCH", `/Users/${made[0].id}`, patchBody([
        { op: "replace", path: "userName", value: "someone@example.com" }])), 400, "mutability");
    // SCIMMY refuses to build this body (userName is required); sent raw.
    const nameless = { schemas: [CORE], displayName: "Nameless" };
    try {
        new SCIMMY.Schemas.User(nameless, "in");
        fail(S, "SCIMMY builds a user without userName");
    } catch { /* expected */ }
    validateError(S, "no userName", await call("POST", "/Users", nameless), 400, "invalidValue");
    validateError(S, "path into a simple attribute", await call("PATCH", `/Users/${made[0].id}`,
        patchBody([{ op: "replace", path: "userName.x", value: "y" }])), 400, "invalidPath");
    const r = await call("GET", "/Users/00000000000000000000000000000000");
    if (expectStatus(S, "unknown user", r, 404)) validateError(S, "unknown user", r, 404, undefined);
}

// ---- (f) paging ---------------------------------------------------------

async function paging() {
    const S = "paging";
    const all = await call("GET", "/Users?count=200");
    if (!expectStatus(S, "full list", all, 200) || !validateList(S, "full list", all.json)) return;
    const total = all.json.totalResults;
    const ids = all.json.Resources.map((u) => u.id);
    const cases = [[1, 5], [3, 4], [total - 2, 10], [total + 5, 10], [0, 3], [2, 0], [1, -4]];
    for (const [start, n] of cases) {
        const r = await call("GET", `/Users?startIndex=${start}&count=${n}`);
        const what = `startIndex=${start}&count=${n}`;
        if (!expectStatus(S, what, r, 200) || !validateList(S, what, r.json)) continue;
        // RFC 7644 3.4.2.4: startIndex below 1 is 1, a negative count is 0.
        const s = Math.max(start, 1);
        const c = Math.max(n, 0);
        const want = ids.slice(s - 1, s - 1 + c);
        const got = r.json.Resources.map((u) => u.id);
        if (r.json.totalResults !== total) fail(S, `${what}: totalResults ${r.json.totalResults} != ${total}`);
        if (r.json.startIndex !== s) fail(S, `${what}: startIndex ${r.json.startIndex} != ${s}`);
        if (JSON.stringify(got) !== JSON.stringify(want))
            fail(S, `${what}: page is not the slice of the full list`);
        count(S);
    }
}

try {
    await discovery();
    const made = await users();
    if (made.length === PEOPLE.length) {
        await filters(made);
        await groups(made);
        await errors(made);
    } else {
        fail("users", `only ${made.length} of ${PEOPLE.length} users created; later sections skipped`);
    }
    await paging();
} catch (e) {
    fail("script", e.stack ?? String(e));
}
summary.problems = problems;
for (const p of problems) console.error(p);
console.log(JSON.stringify(summary));
process.exit(problems.length ? 1 : 0);

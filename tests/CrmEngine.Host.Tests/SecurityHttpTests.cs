using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Record access over real HTTP against one running <c>crm</c> process: the shipped roles seeded, one user per role (and a
/// hostile salesperson of another unit and team), each with an API key bound to them (<c>crm apikeys create --user</c>).
/// The matrix (every shipped role × customer, activity, order, product, consent × create, read, list, write, delete) is
/// data below, written from the role table of docs/security.md, not from the code; then field protection, a hostile user
/// who gets nothing and changes nothing, and paging that stays exact while another client writes.
/// </summary>
public sealed class SecurityHttpTests(SecurityHttpTests.Engine engine, ITestOutputHelper output) : IClassFixture<SecurityHttpTests.Engine>
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    /// <summary>Depth letters per role and entity, in the order create read write delete (docs/security.md, shipped roles).</summary>
    private static readonly Dictionary<string, (string User, Dictionary<string, string> Depths)> Roles = new()
    {
        ["administrator"] = ("admin", Same("aaaa")),
        ["sales-manager"] = ("sm", new() { ["customer"] = "bbbu", ["activity"] = "bbbu", ["order"] = "bbbu", ["product"] = "-a--", ["consent"] = "aa--" }),
        ["salesperson"] = ("sp", new() { ["customer"] = "ooo-", ["activity"] = "oooo", ["order"] = "ooo-", ["product"] = "-a--", ["consent"] = "aa--" }),
        ["service-manager"] = ("svm", new() { ["customer"] = "-bb-", ["activity"] = "bbbu", ["order"] = "-b--", ["product"] = "-a--", ["consent"] = "aa--" }),
        ["service-agent"] = ("sa", new() { ["customer"] = "-uo-", ["activity"] = "tto-", ["order"] = "-u--", ["product"] = "-a--", ["consent"] = "aa--" }),
        ["marketing"] = ("mk", new() { ["customer"] = "ua--", ["activity"] = "ooo-", ["order"] = "----", ["product"] = "-a--", ["consent"] = "aaa-" }),
        ["auditor"] = ("au", Same("-a--")),
        ["integration"] = ("integ", new() { ["customer"] = "aaa-", ["activity"] = "aaa-", ["order"] = "aaa-", ["product"] = "aaa-", ["consent"] = "aaa-" }),
    };

    private static Dictionary<string, string> Same(string depths) =>
        new[] { "customer", "activity", "order", "product", "consent" }.ToDictionary(e => e, _ => depths);

    private static readonly string[] Operations = ["create", "read", "list", "write", "delete"];

    /// <summary>
    /// Does a depth letter reach a record owned by <c>sp</c> (unit sales, team north-desk) for <paramref name="user"/>?
    /// Every matrix user but admin (unit org) sits in unit sales and in no team of sp's; products and consents have no
    /// owner and belong to the root unit, which only depth all reaches from sales.
    /// </summary>
    private static bool Reaches(char depth, string user, bool owned) => depth switch
    {
        '-' => false,
        'a' => true,
        _ when !owned => false,
        'o' or 't' => user == "sp",
        _ => true, // u, b: sp's unit is the caller's
    };

    [Fact]
    public async Task Every_shipped_role_gets_exactly_its_privileges_on_every_entity_over_real_http()
    {
        var http = engine.Http;
        var failures = new List<string>();
        var checkedCount = 0;
        foreach (var (role, (user, depths)) in Roles)
        {
            var key = engine.Keys[user];
            foreach (var (entity, letters) in depths)
            {
                var owned = entity is "customer" or "activity" or "order";
                var mayCreate = letters[0] != '-';
                var mayRead = Reaches(letters[1], user, owned);
                var mayWrite = Reaches(letters[2], user, owned);
                var mayDelete = Reaches(letters[3], user, owned);
                foreach (var op in Operations)
                {
                    if (entity == "consent" && op is "write" or "delete" or "list")
                    {
                        continue; // the consent ledger is append-only and listed per customer (read)
                    }

                    var expected = op switch { "create" => mayCreate, "read" or "list" => mayRead, "write" => mayWrite, _ => mayDelete };
                    var (allowed, status, detail, target) = await TryAsync(http, key, entity, op);
                    checkedCount++;
                    if (allowed != expected)
                    {
                        failures.Add($"{role} ({user}) {op} {entity}: expected {(expected ? "allow" : "deny")}, got {status} {detail}");
                        continue;
                    }

                    if (!allowed && op == "read" && status != 404)
                    {
                        failures.Add($"{role} ({user}) read {entity}: denied with {status}, expected 404 (as for an id nobody has)");
                    }

                    if (allowed || target is null)
                    {
                        continue;
                    }

                    // A denial: 404 when the caller may not read the record (ids tell nothing), else 403 naming the privilege;
                    // the record is as it was.
                    var expectedStatus = op is "write" or "delete" && !mayRead ? 404 : 403;
                    if (status != expectedStatus)
                    {
                        failures.Add($"{role} ({user}) {op} {entity}: denied with {status}, expected {expectedStatus}: {detail}");
                    }

                    if (status == 403 && !detail.Contains($"{entity}:{op}", StringComparison.Ordinal))
                    {
                        failures.Add($"{role} ({user}) {op} {entity}: the 403 does not name {entity}:{op}: {detail}");
                    }

                    var (route, id, version) = target.Value;
                    using var after = await engine.AdminAsync(HttpMethod.Get, $"api/{route}/{id}");
                    if (after.StatusCode != HttpStatusCode.OK || await VersionOf(after) != version)
                    {
                        failures.Add($"{role} ({user}) {op} {entity}: denied, yet the record changed ({(int)after.StatusCode})");
                    }
                }
            }
        }

        output.WriteLine($"{checkedCount} role × entity × operation checks");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
        Assert.True(checkedCount >= 8 * 17, $"only {checkedCount} checks ran");
    }

    /// <summary>One operation as the key's user; for write and delete also the record tried (to check it did not change).</summary>
    private async Task<(bool Allowed, int Status, string Detail, (string Route, string Id, long Version)? Target)> TryAsync(HttpClient http, string key,
        string entity, string op)
    {
        var route = entity switch { "customer" => "customers", "activity" => "activities", "order" => "orders", "product" => "products", _ => "consents" };
        var owner = entity == "product" ? null : "sp";
        switch (op)
        {
            case "create":
            {
                using var response = entity == "consent"
                    ? await Send(http, HttpMethod.Post, $"api/customers/{engine.SpCustomer}/consents", key, new { purpose = "newsletter", channel = "Email", granted = true, source = "matrix" })
                    : await Send(http, HttpMethod.Post, $"api/{route}", key, NewBody(entity, owner: null));
                return (response.StatusCode == HttpStatusCode.Created, (int)response.StatusCode, await response.Content.ReadAsStringAsync(), null);
            }
            case "read":
            {
                var path = entity == "consent" ? $"api/customers/{engine.SpCustomer}/consents" : $"api/{route}/{engine.Targets[entity]}";
                using var response = await Send(http, HttpMethod.Get, path, key);
                return (response.StatusCode == HttpStatusCode.OK, (int)response.StatusCode, await response.Content.ReadAsStringAsync(), null);
            }
            case "list":
            {
                var query = entity == "product" ? $"api/products?sku={engine.ProductSku}" : $"api/{route}?owner=sp&limit=500";
                using var response = await Send(http, HttpMethod.Get, query, key);
                var body = await response.Content.ReadAsStringAsync();
                var listed = response.StatusCode == HttpStatusCode.OK &&
                             JsonNode.Parse(body)!["items"]!.AsArray().Any(i => i!["id"]!.GetValue<string>() == engine.Targets[entity]);
                if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.Forbidden))
                {
                    throw new Xunit.Sdk.XunitException($"list {entity}: {(int)response.StatusCode} {body}");
                }

                return (listed, (int)response.StatusCode, body.Length > 300 ? body[..300] : body, null);
            }
            default:
            {
                // A fresh record of sp's for every write and delete, so that an allowed one leaves the others untouched.
                var (id, version) = await engine.CreateAsAdminAsync(route, NewBody(entity, owner));
                using var response = op == "write"
                    ? await Send(http, HttpMethod.Patch, $"api/{route}/{id}", key, Change(entity), version)
                    : await Send(http, HttpMethod.Delete, $"api/{route}/{id}", key);
                var ok = op == "write" ? response.StatusCode == HttpStatusCode.OK : response.StatusCode == HttpStatusCode.NoContent;
                return (ok, (int)response.StatusCode, await response.Content.ReadAsStringAsync(), (route, id, version));
            }
        }
    }

    private object NewBody(string entity, string? owner) => entity switch
    {
        "customer" => new { name = "Matrix Kunde " + Guid.NewGuid().ToString("N")[..6], owner },
        "activity" => new { customerId = engine.SpCustomer, subject = "Matrix call", owner },
        "order" => new { customerId = engine.SpCustomer, number = "M-" + Guid.NewGuid().ToString("N")[..6], owner },
        _ => new { sku = "SKU-" + Guid.NewGuid().ToString("N")[..8], name = "Matrix product" },
    };

    private static object Change(string entity) => entity switch
    {
        "customer" => new { name = "Changed " + Guid.NewGuid().ToString("N")[..4] },
        "activity" => new { subject = "Changed" },
        "order" => new { number = "C-" + Guid.NewGuid().ToString("N")[..6] },
        _ => new { name = "Changed product" },
    };

    [Fact]
    public async Task Protected_fields_are_absent_from_answers_refused_in_writes_filters_and_kept_by_a_replace()
    {
        var http = engine.Http;
        var id = engine.SpCustomer;

        // What each reader sees of the same customer (salesperson: credit, not overdue; service manager: overdue, not credit).
        var seen = new Dictionary<string, (bool Credit, bool Overdue)>
        {
            ["admin"] = (true, true), ["sp"] = (true, false), ["svm"] = (false, true), ["mk"] = (false, false), ["au"] = (true, true),
        };
        foreach (var (user, (credit, overdue)) in seen)
        {
            using var response = await Send(http, HttpMethod.Get, $"api/customers/{id}", engine.Keys[user]);
            var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{user}: {body}");
            Assert.True(body.ContainsKey("creditLevel") == credit, $"{user} creditLevel: {body}");
            Assert.True(body.ContainsKey("overdueAmount") == overdue, $"{user} overdueAmount: {body}");
            if (credit)
            {
                Assert.Equal("B", body["creditLevel"]!.GetValue<string>());
            }

            // Lists and searches show the same fields as the record.
            foreach (var query in new[] { "api/customers?owner=sp", $"api/customers?email={Uri.EscapeDataString(engine.SpEmail)}", "api/customers?name=Geheim" })
            {
                using var list = await Send(http, HttpMethod.Get, query, engine.Keys[user]);
                var items = JsonNode.Parse(await list.Content.ReadAsStringAsync())!["items"]!.AsArray();
                var item = items.Single(i => i!["id"]!.GetValue<string>() == id)!.AsObject();
                Assert.True(item.ContainsKey("overdueAmount") == overdue, $"{user} {query}: {item}");
                Assert.True(item.ContainsKey("creditLevel") == credit, $"{user} {query}: {item}");
            }
        }

        var sp = engine.Keys["sp"];
        long version;
        using (var read = await engine.AdminAsync(HttpMethod.Get, $"api/customers/{id}"))
        {
            version = await VersionOf(read);
        }

        // A hidden field may not be written (not even with a guess of its value), nor filtered or sorted by.
        using (var response = await Send(http, HttpMethod.Patch, $"api/customers/{id}", sp, new { overdueAmount = 1234.5 }, version))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Equal("customer.overdueAmount:write", problem["missingPrivilege"]!.GetValue<string>());
        }

        foreach (var query in new[] { "api/customers?overdueAmount=1234.5", "api/customers?sort=-overdueAmount" })
        {
            using var response = await Send(http, HttpMethod.Get, query, sp);
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Equal("customer.overdueAmount:read", problem["missingPrivilege"]!.GetValue<string>());
        }

        // Readable but not writable: the write pipeline refuses it, naming the field privilege.
        using (var response = await Send(http, HttpMethod.Patch, $"api/customers/{id}", sp, new { creditLevel = "A" }, version))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Equal("customer.creditLevel:write", problem["missingPrivilege"]!.GetValue<string>());
            Assert.Contains("customer.creditLevel", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // A replace with what sp sees keeps the hidden overdue amount as stored.
        JsonObject visible;
        using (var read = await Send(http, HttpMethod.Get, $"api/customers/{id}", sp))
        {
            visible = JsonNode.Parse(await read.Content.ReadAsStringAsync())!.AsObject();
        }

        visible["salesStatus"] = "replaced by sp";
        using (var response = await Send(http, HttpMethod.Put, $"api/customers/{id}", sp, visible, version))
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        }

        using (var read = await engine.AdminAsync(HttpMethod.Get, $"api/customers/{id}"))
        {
            var stored = JsonNode.Parse(await read.Content.ReadAsStringAsync())!;
            Assert.Equal(1234.5m, stored["overdueAmount"]!.GetValue<decimal>());
            Assert.Equal("replaced by sp", stored["salesStatus"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task A_hostile_user_of_another_team_finds_nothing_and_changes_nothing_of_another_teams_customer()
    {
        var http = engine.Http;
        var eve = engine.Keys["eve"];
        var id = engine.SpCustomer;
        var before = await engine.StoreImageAsync();

        // Searches by every look-up that would find sp's customer for sp.
        foreach (var query in new[]
                 {
                     "api/customers", "api/customers?limit=500", $"api/customers?email={Uri.EscapeDataString(engine.SpEmail)}", "api/customers?phone=%2B4930123456",
                     "api/customers?tag=geheim", "api/customers?owner=sp", "api/customers?name=Geheim", "api/customers?name=g",
                     "api/activities?owner=sp", $"api/activities?customerId={id}", $"api/orders?customerId={id}", "api/orders?owner=sp",
                 })
        {
            using var response = await Send(http, HttpMethod.Get, query, eve);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {body}");
            var items = JsonNode.Parse(body)!["items"]!.AsArray();
            Assert.True(items.All(i => engine.EveOwned.Contains(i!["id"]!.GetValue<string>())), $"{query} showed eve what is not hers: {body}");
        }

        // Paging offsets: page by one from the start and from just before sp's customer; only eve's own records come.
        var walked = await WalkAsync(http, eve, "api/customers", 1);
        Assert.Equal(engine.EveCustomers.Order(StringComparer.Ordinal), walked);
        using (var response = await Send(http, HttpMethod.Get, $"api/customers?limit=5&after={id[..^1]}", eve))
        {
            var items = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["items"]!.AsArray();
            Assert.DoesNotContain(items, i => i!["id"]!.GetValue<string>() == id);
        }

        // The change feed: none of sp's records, and the cursor still reaches the end of the feed.
        using (var response = await Send(http, HttpMethod.Get, "api/changes?since=0&limit=1000", eve))
        {
            var page = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            var ids = page["changes"]!.AsArray().Select(c => c!["id"]!.GetValue<string>()).ToHashSet();
            Assert.Empty(ids.Intersect(engine.SpRecords));
            Assert.Contains(engine.EveCustomers[0], ids);
        }

        // Walked in small pages, the skipped changes still move the cursor to the end of the feed (nothing is served twice).
        var changesEnd = await WalkChangesAsync(http, eve);
        Assert.True(changesEnd >= before.LastSequence, $"the walk stopped at {changesEnd}, before the end {before.LastSequence}");

        // Id guessing: the same 404 as for an id nobody has, on the record and on everything under it.
        var nobody = "0" + id[1..^2] + "zz";
        foreach (var path in new[] { "", "/contacts", "/timeline", "/orders", "/consents", "/segments" })
        {
            using var guessed = await Send(http, HttpMethod.Get, $"api/customers/{id}{path}", eve);
            using var missing = await Send(http, HttpMethod.Get, $"api/customers/{nobody}{path}", eve);
            var a = await ApiHostTests.AssertProblemAsync(guessed, HttpStatusCode.NotFound);
            var b = await ApiHostTests.AssertProblemAsync(missing, HttpStatusCode.NotFound);
            Assert.Equal(b["detail"]!.GetValue<string>().Replace(nobody, "ID", StringComparison.Ordinal), a["detail"]!.GetValue<string>().Replace(id, "ID", StringComparison.Ordinal));
        }

        foreach (var (entity, route) in new[] { ("activity", "activities"), ("order", "orders") })
        {
            using var guessed = await Send(http, HttpMethod.Get, $"api/{route}/{engine.Targets[entity]}", eve);
            await ApiHostTests.AssertProblemAsync(guessed, HttpStatusCode.NotFound);
        }

        // Writes and deletes: 404 (as for a missing record), a record attached to the customer: as if it did not exist.
        var attempts = new (HttpMethod Method, string Path, object? Body, long? IfMatch, HttpStatusCode Expected)[]
        {
            (HttpMethod.Patch, $"api/customers/{id}", new { name = "Eve was here" }, before.Version, HttpStatusCode.NotFound),
            (HttpMethod.Put, $"api/customers/{id}", new { name = "Eve was here" }, before.Version, HttpStatusCode.NotFound),
            (HttpMethod.Delete, $"api/customers/{id}", null, null, HttpStatusCode.NotFound),
            (HttpMethod.Post, $"api/customers/{id}/contacts", new { name = "Eve" }, before.Version, HttpStatusCode.NotFound),
            (HttpMethod.Post, $"api/customers/{id}/consents", new { purpose = "newsletter", channel = "Email", granted = false, source = "eve" }, null, HttpStatusCode.NotFound),
            (HttpMethod.Post, "api/activities", new { customerId = id, subject = "Eve's call" }, null, HttpStatusCode.UnprocessableEntity),
            (HttpMethod.Post, "api/orders", new { customerId = id, number = "EVE-1" }, null, HttpStatusCode.UnprocessableEntity),
            (HttpMethod.Patch, $"api/activities/{engine.Targets["activity"]}", new { subject = "Eve" }, 1, HttpStatusCode.NotFound),
            (HttpMethod.Delete, $"api/activities/{engine.Targets["activity"]}", null, null, HttpStatusCode.NotFound),
            (HttpMethod.Delete, $"api/orders/{engine.Targets["order"]}", null, null, HttpStatusCode.NotFound),
        };
        foreach (var (method, path, body, ifMatch, expected) in attempts)
        {
            using var response = await Send(http, method, path, eve, body, ifMatch);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{method} {path}: expected {(int)expected}, got {(int)response.StatusCode} {text}");
            if (expected == HttpStatusCode.UnprocessableEntity)
            {
                // The same answer as for a customer nobody has.
                var detail = JsonNode.Parse(text)!["detail"]!.GetValue<string>();
                Assert.True(detail.Contains($"customer '{id}' does not exist", StringComparison.Ordinal), $"{method} {path}: {text}");
            }
        }

        // Nothing changed: sp's records as the administrator sees them are the same, and the feed has no change by eve
        // and none of sp's records since (engine writers may add their own changes meanwhile).
        var after = await engine.StoreImageAsync();
        Assert.Equal(before.Records, after.Records);
        using (var response = await engine.AdminAsync(HttpMethod.Get, $"api/changes?since={before.LastSequence}&limit=1000"))
        {
            var changes = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["changes"]!.AsArray();
            Assert.DoesNotContain(changes, c => c!["actor"]!.GetValue<string>() == "eve" || engine.SpRecords.Contains(c["id"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task Pages_walked_while_another_client_inserts_and_deletes_show_every_lasting_record_exactly_once()
    {
        var http = engine.Http;
        var count = int.TryParse(Environment.GetEnvironmentVariable("CRM_PAGING_RECORDS"), out var n) ? n : 120;
        // Records that exist for the whole walk: sp's (visible to sp and admin) and sm's (visible to admin only).
        var lasting = new List<(string Id, string Owner)>();
        for (var i = 0; i < count; i++)
        {
            var owner = i % 3 == 0 ? "sm" : "sp";
            var (id, _) = await engine.CreateAsAdminAsync("customers", new { name = $"Lasting {i:D4}", owner, tags = new[] { "paging" } });
            lasting.Add((id, owner));
        }

        using var stop = new CancellationTokenSource();
        var churned = 0;
        var writer = Task.Run(async () =>
        {
            // Another client: inserts records (sp's and eve's) and deletes each again, interleaved with the walk.
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                var (a, _) = await engine.CreateAsAdminAsync("customers", new { name = $"Churn {i}", owner = i % 2 == 0 ? "sp" : "sm", tags = new[] { "paging" } });
                var (b, _) = await engine.CreateAsAdminAsync("customers", new { name = $"Churn {i}b", owner = "sp", tags = new[] { "paging" } });
                using (await engine.AdminAsync(HttpMethod.Delete, $"api/customers/{a}"))
                {
                }

                using (await engine.AdminAsync(HttpMethod.Delete, $"api/customers/{b}"))
                {
                }

                i++;
                Interlocked.Increment(ref churned);
            }
        });

        try
        {
            foreach (var (user, path, visible) in new[]
                     {
                         ("sp", "api/customers", (Func<string, bool>)(o => o == "sp")),
                         ("admin", "api/customers", _ => true),
                         ("sp", "api/customers?tag=paging", o => o == "sp"),
                         ("admin", "api/customers?tag=paging", _ => true),
                     })
            {
                var seenIds = await WalkAsync(http, engine.Keys[user], path, 7, duplicatesAllowed: true);
                var expected = lasting.Where(r => visible(r.Owner)).Select(r => r.Id).ToList();
                foreach (var id in expected)
                {
                    var times = seenIds.Count(s => s == id);
                    Assert.True(times == 1, $"{user} {path}: {id} seen {times} times");
                }

                Assert.DoesNotContain(seenIds, s => lasting.Any(r => r.Id == s && !visible(r.Owner)));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await writer;
        }

        output.WriteLine($"{churned} insert/delete rounds during the walks");
        Assert.True(churned > 0, "the writer never ran during the walks");
    }

    /// <summary>Every id of every page, following the next links.</summary>
    private static async Task<List<string>> WalkAsync(HttpClient http, string key, string path, int limit, bool duplicatesAllowed = false)
    {
        var ids = new List<string>();
        string? next = path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "limit=" + limit;
        while (next is not null)
        {
            using var response = await Send(http, HttpMethod.Get, next.TrimStart('/'), key);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{next}: {body}");
            var page = JsonNode.Parse(body)!;
            ids.AddRange(page["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
            next = page["next"]?.GetValue<string>();
        }

        if (!duplicatesAllowed)
        {
            Assert.Equal(ids.Count, ids.Distinct().Count());
        }

        return ids;
    }

    /// <summary>Follows the change feed page by page from 0; returns the last <c>next</c>.</summary>
    private static async Task<long> WalkChangesAsync(HttpClient http, string key)
    {
        long since = 0;
        while (true)
        {
            using var response = await Send(http, HttpMethod.Get, $"api/changes?since={since}&limit=3", key);
            var page = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            var next = page["next"]!.GetValue<long>();
            Assert.True(next >= since);
            if (!page["more"]!.GetValue<bool>())
            {
                return next;
            }

            since = next;
        }
    }

    private static async Task<long> VersionOf(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!["version"]!.GetValue<long>();

    internal static async Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string path, string key, object? body = null, long? ifMatch = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Api-Key", key);
        if (ifMatch is { } v)
        {
            request.Headers.TryAddWithoutValidation("If-Match", $"\"{v}\"");
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType());
        }

        return await http.SendAsync(request);
    }

    /// <summary>One engine for the class: the shipped roles, one user and key per role, and the records the tests work on.</summary>
    public sealed class Engine : IAsyncLifetime
    {
        private TestRoot? _root;
        private CrmProcess? _crm;

        public HttpClient Http { get; private set; } = null!;
        public Dictionary<string, string> Keys { get; } = new(StringComparer.Ordinal);

        /// <summary>sp's customer (and its activity, order; a product) as the matrix reads them.</summary>
        public string SpCustomer { get; private set; } = "";
        public Dictionary<string, string> Targets { get; } = new(StringComparer.Ordinal);
        public HashSet<string> SpRecords { get; } = new(StringComparer.Ordinal);
        public List<string> EveCustomers { get; } = [];
        public HashSet<string> EveOwned { get; } = new(StringComparer.Ordinal);
        public string SpEmail { get; } = "geheim@kunde.example";
        public string ProductSku { get; } = "SKU-TARGET-1";

        public async Task InitializeAsync()
        {
            _root = new TestRoot();
            // The shipped model plus two teams and one user per shipped role (all in unit sales), and eve in another unit and team.
            var seed = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(CrmProcess.HostOutput, "security.json")),
                documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!.AsObject();
            seed["teams"] = JsonNode.Parse("""
                [ { "id": "north-desk", "name": "North desk", "unit": "sales" },
                  { "id": "south-desk", "name": "South desk", "unit": "service" } ]
                """);
            var users = seed["users"]!.AsArray();
            foreach (var (role, (user, _)) in Roles.Where(r => r.Value.User != "admin"))
            {
                users.Add(new JsonObject
                {
                    ["id"] = user, ["name"] = "User " + user, ["kind"] = user == "integ" ? "integration" : "person", ["unit"] = "sales",
                    ["roles"] = new JsonArray(role), ["teams"] = user == "sp" ? new JsonArray("north-desk") : new JsonArray(),
                });
            }

            users.Add(JsonNode.Parse("""{ "id": "eve", "name": "Eve Other", "unit": "service", "roles": ["salesperson"], "teams": ["south-desk"] }"""));
            var seedFile = _root.File_("security-test.json");
            await File.WriteAllTextAsync(seedFile, seed.ToJsonString());
            var (code, text) = await CrmProcess.RunAsync(_root.Path, null, "security", "seed", seedFile);
            Assert.True(code == 0, text);

            _crm = CrmProcess.Start(_root.Path, null, "run");
            await _crm.WaitForReadyAsync();
            Http = new HttpClient { BaseAddress = _root.ApiBase, Timeout = Bound };
            using (await ApiHostTests.EventuallyAsync(() => Http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
            {
            }

            foreach (var user in Roles.Values.Select(r => r.User).Append("eve"))
            {
                (code, text) = await CrmProcess.RunAsync(_root.Path, null, "apikeys", "create", "--name", "key-" + user,
                    "--scope", user == "admin" ? "admin" : "write", "--user", user);
                Assert.True(code == 0, text);
                Keys[user] = ApiHostTests.ParseKey(text);
            }

            (SpCustomer, _) = await CreateAsAdminAsync("customers", new
            {
                name = "Geheim Kunde GmbH", owner = "sp", emails = new[] { SpEmail }, phones = new[] { "+4930123456" }, tags = new[] { "geheim" },
                creditLevel = "B", overdueAmount = 1234.5m, paymentTerms = "30 days",
            });
            Targets["customer"] = SpCustomer;
            (Targets["activity"], _) = await CreateAsAdminAsync("activities", new { customerId = SpCustomer, subject = "Secret call", owner = "sp" });
            (Targets["order"], _) = await CreateAsAdminAsync("orders", new { customerId = SpCustomer, number = "SECRET-1", owner = "sp" });
            (Targets["product"], _) = await CreateAsAdminAsync("products", new { sku = ProductSku, name = "Target product" });
            using (var consent = await AdminAsync(HttpMethod.Post, $"api/customers/{SpCustomer}/consents", new { purpose = "phone", channel = "Phone", granted = true, source = "fixture" }))
            {
                Assert.True(consent.StatusCode == HttpStatusCode.Created, await consent.Content.ReadAsStringAsync());
            }

            SpRecords.UnionWith([SpCustomer, Targets["activity"], Targets["order"]]);
            // eve's own customer, made by eve (so she owns it).
            using (var created = await Send(Http, HttpMethod.Post, "api/customers", Keys["eve"], new { name = "Eves Kunde", tags = new[] { "geheim" } }))
            {
                var body = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
                Assert.True(created.StatusCode == HttpStatusCode.Created, body.ToJsonString());
                Assert.Equal("eve", body["owner"]!.GetValue<string>());
                EveCustomers.Add(body["id"]!.GetValue<string>());
            }

            EveOwned.UnionWith(EveCustomers);
        }

        public async Task<(string Id, long Version)> CreateAsAdminAsync(string route, object body)
        {
            using var response = await AdminAsync(HttpMethod.Post, $"api/{route}", body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST {route}: {(int)response.StatusCode} {text}");
            var node = JsonNode.Parse(text)!;
            return (node["id"]!.GetValue<string>(), node["version"]!.GetValue<long>());
        }

        public Task<HttpResponseMessage> AdminAsync(HttpMethod method, string path, object? body = null) => Send(Http, method, path, Keys["admin"], body);

        /// <summary>sp's customer with its activities, orders and consents as the administrator reads them, and the feed's end.</summary>
        public async Task<(string Records, long Version, long LastSequence)> StoreImageAsync()
        {
            var parts = new List<string>();
            long version = 0;
            foreach (var path in new[]
                     {
                         $"api/customers/{SpCustomer}", $"api/customers/{SpCustomer}/timeline", $"api/customers/{SpCustomer}/orders",
                         $"api/customers/{SpCustomer}/consents", $"api/activities/{Targets["activity"]}", $"api/orders/{Targets["order"]}",
                     })
            {
                using var response = await AdminAsync(HttpMethod.Get, path);
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {text}");
                parts.Add(text);
                if (path.EndsWith(SpCustomer, StringComparison.Ordinal))
                {
                    version = JsonNode.Parse(text)!["version"]!.GetValue<long>();
                }
            }

            using var changes = await AdminAsync(HttpMethod.Get, "api/changes?since=0&limit=1");
            var last = JsonNode.Parse(await changes.Content.ReadAsStringAsync())!["lastSequence"]!.GetValue<long>();
            return (string.Join('\n', parts), version, last);
        }

        public async Task DisposeAsync()
        {
            Http?.Dispose();
            if (_crm is not null)
            {
                _crm.Signal(15);
                await _crm.WaitForExitAsync(Bound);
                _crm.Dispose();
            }

            _root?.Dispose();
        }
    }
}

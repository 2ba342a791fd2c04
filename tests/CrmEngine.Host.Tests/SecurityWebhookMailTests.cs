using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using static CrmEngine.Host.Tests.SecurityHttpTests;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Webhook management and the mail outbox API as a hostile user meets them over real HTTP against one running
/// <c>crm</c> (issue #9, review findings 1, 2 and 7): the shipped roles seeded, anna (salesperson, unit sales), bob
/// (salesperson, unit service) and mia (marketing), each with an ADMIN-scope key (scope only narrows: the user decides).
/// Anna cannot list, change, ping, delete or read the history of the administrator's subscription; consent entries of
/// bob's customer never reach anna's subscription; the outbox shows anna only mail about her customers, masked as she
/// sees them, and the blacklist reason is nowhere — not in any answer, not in the log.
/// </summary>
public sealed class SecurityWebhookMailTests(SecurityWebhookMailTests.Engine engine, ITestOutputHelper output) : IClassFixture<SecurityWebhookMailTests.Engine>
{
    private const string BlacklistReason = "fraud 2025";
    private const string Issuer = "https://idp.example.test/realms/crm-hooks";
    private const string Audience = "crm-api";

    [Fact]
    public async Task Another_users_webhook_subscription_cannot_be_seen_or_repointed_and_consents_go_only_to_readers_of_the_customer()
    {
        var http = engine.Http;
        using var adminHook = new WebhooksHostTests.Listener(_ => 200);
        using var annaHook = new WebhooksHostTests.Listener(_ => 200);
        using var steal = new WebhooksHostTests.Listener(_ => 200);

        // The administrator's ERP subscription, as in the review's repro.
        var erp = await CreatedIdAsync(await Send(http, HttpMethod.Post, "api/webhooks", engine.Keys["admin"], new { url = adminHook.Url, events = new[] { "customer.*", "consent.*" } }));
        var unknown = JsonNode.Parse(await (await Send(http, HttpMethod.Get, "api/webhooks/wh_0123456789abcdef0123456789abcdef", engine.Keys["anna"])).Content.ReadAsStringAsync())!;

        // Anna's bearer token has no scope claim, hence the admin scope: her user still decides.
        var annasToken = SecurityIdentityTests.Token(engine.Signing, "anna", Issuer, Audience);
        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
                 {
                     (HttpMethod.Get, $"api/webhooks/{erp}", null),
                     (HttpMethod.Patch, $"api/webhooks/{erp}", new { url = steal.Url }),
                     (HttpMethod.Get, $"api/webhooks/{erp}/deliveries", null),
                 })
        {
            using var response = await SecurityIdentityTests.Bearer(http, method, path, annasToken, body);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"bearer {method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        using (var listed = await SecurityIdentityTests.Bearer(http, HttpMethod.Get, "api/webhooks", annasToken))
        {
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
            Assert.DoesNotContain(erp, await listed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        foreach (var key in new[] { engine.Keys["anna"], engine.Keys["nouser"] })
        {
            using (var list = await Send(http, HttpMethod.Get, "api/webhooks", key))
            {
                var text = await list.Content.ReadAsStringAsync();
                Assert.True(list.StatusCode == HttpStatusCode.OK, text);
                Assert.DoesNotContain(erp, text, StringComparison.Ordinal);
            }

            foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
                     {
                         (HttpMethod.Get, $"api/webhooks/{erp}", null),
                         (HttpMethod.Patch, $"api/webhooks/{erp}", new { url = steal.Url, secret = "stolen-secret-0123456789" }),
                         (HttpMethod.Post, $"api/webhooks/{erp}/ping", null),
                         (HttpMethod.Get, $"api/webhooks/{erp}/deliveries", null),
                         (HttpMethod.Delete, $"api/webhooks/{erp}", null),
                     })
            {
                using var response = await Send(http, method, path, key, body);
                var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode} {problem.ToJsonString()}");
                // The same answer as for an id nobody has (with the id asked for).
                Assert.Equal(unknown["detail"]!.GetValue<string>().Replace("wh_0123456789abcdef0123456789abcdef", erp, StringComparison.Ordinal),
                    problem["detail"]!.GetValue<string>());
            }
        }

        // The administrator's next change goes where the administrator pointed it, never to anna's server.
        var bobsCustomer = engine.Customers["bob"];
        var first = await CreatedIdAsync(await Send(http, HttpMethod.Post, $"api/customers/{bobsCustomer}/consents", engine.Keys["admin"],
            new { purpose = "newsletter", channel = "Email", granted = true, source = "fair" }));
        await adminHook.WaitForAsync(r => r.Json["entityId"]?.GetValue<string>() == first, Bound);

        using (var changed = await Send(http, HttpMethod.Get, $"api/webhooks/{erp}", engine.Keys["admin"]))
        {
            var sub = JsonNode.Parse(await changed.Content.ReadAsStringAsync())!;
            Assert.Equal(adminHook.Url, sub["url"]!.GetValue<string>());
            Assert.Equal("admin", sub["user"]!.GetValue<string>());
        }

        Assert.Empty(steal.Received);

        // Consents: anna's own subscription gets the entry of her customer, not the one of bob's made just before.
        var annas = await CreatedIdAsync(await Send(http, HttpMethod.Post, "api/webhooks", engine.Keys["anna"], new { url = annaHook.Url, events = new[] { "consent.*" } }));
        string bobsEntry, annasEntry;
        using (var response = await Send(http, HttpMethod.Post, $"api/customers/{bobsCustomer}/consents", engine.Keys["admin"],
                   new { purpose = "phone", channel = "Phone", granted = true, source = "fair" }))
        {
            bobsEntry = await CreatedIdAsync(response);
        }

        using (var response = await Send(http, HttpMethod.Post, $"api/customers/{engine.Customers["anna"]}/consents", engine.Keys["admin"],
                   new { purpose = "phone", channel = "Phone", granted = true, source = "fair" }))
        {
            annasEntry = await CreatedIdAsync(response);
        }

        // One subscription's deliveries go in change order: once anna's (later) entry arrived, bob's went before it or never.
        await annaHook.WaitForAsync(r => r.Json["entityId"]?.GetValue<string>() == annasEntry, Bound);
        Assert.DoesNotContain(annaHook.Received, r => r.Json["entityId"]?.GetValue<string>() == bobsEntry);
        Assert.DoesNotContain(annaHook.Received, r => System.Text.Encoding.UTF8.GetString(r.Body).Contains(bobsCustomer, StringComparison.Ordinal));
        using (var history = await Send(http, HttpMethod.Get, $"api/webhooks/{annas}/deliveries", engine.Keys["anna"]))
        {
            var items = JsonNode.Parse(await history.Content.ReadAsStringAsync())!["items"]!.AsArray();
            Assert.Equal([annasEntry], items.Select(i => i!["entityId"]!.GetValue<string>()));
        }

        // The administrator (security: write at all) manages anna's subscription too; it stays anna's.
        using (var patched = await Send(http, HttpMethod.Patch, $"api/webhooks/{annas}", engine.Keys["admin"], new { description = "seen by admin" }))
        {
            var text = await patched.Content.ReadAsStringAsync();
            Assert.True(patched.StatusCode == HttpStatusCode.OK, text);
            Assert.Equal("anna", JsonNode.Parse(text)!["user"]!.GetValue<string>());
        }

        await engine.NoSecretInLogAsync(output);
    }

    [Fact]
    public async Task The_outbox_shows_each_user_only_mail_about_customers_they_read_masked_and_never_the_blacklist_reason()
    {
        var http = engine.Http;
        // Every message is there (as the administrator sees them): a welcome per customer, the ops mail without a customer,
        // the order confirmation for anna's customer.
        var all = await engine.WaitForMailAsync(6);
        string MessageOf(string customer, string template) =>
            all.Single(m => m["customerId"]?.GetValue<string>() == customer && m["template"]!.GetValue<string>() == template)["id"]!.GetValue<string>();
        var annasWelcome = MessageOf(engine.Customers["anna"], "welcome");
        var annasOrder = MessageOf(engine.Customers["anna"], "order-confirmation");
        var bobsWelcome = MessageOf(engine.Customers["bob"], "welcome");
        var blacklisted = MessageOf(engine.Customers["black"], "welcome");
        var ops = all.Single(m => string.IsNullOrEmpty(m["customerId"]?.GetValue<string>()))["id"]!.GetValue<string>();

        // anna: only mail about her customer, in the list and one by one; the rest is the same 404 as an unknown id.
        var annaList = await ListAsync(engine.Keys["anna"]);
        Assert.Equal(new[] { annasWelcome, annasOrder }.Order(StringComparer.Ordinal), annaList.Select(m => m["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        using (var bearer = await SecurityIdentityTests.Bearer(http, HttpMethod.Get, "api/mail/messages?limit=1000", SecurityIdentityTests.Token(engine.Signing, "anna", Issuer, Audience)))
        {
            var text = await bearer.Content.ReadAsStringAsync();
            Assert.True(bearer.StatusCode == HttpStatusCode.OK, text);
            Assert.Equal(2, JsonNode.Parse(text)!.AsArray().Count);
        }

        foreach (var id in new[] { bobsWelcome, blacklisted, ops })
        {
            foreach (var (method, path) in new[] { (HttpMethod.Get, $"api/mail/messages/{id}"), (HttpMethod.Post, $"api/mail/messages/{id}/retry") })
            {
                using var response = await Send(http, method, path, engine.Keys["anna"]);
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"anna {method} {path}: {(int)response.StatusCode} {text}");
                Assert.Contains($"no message '{id}'", text, StringComparison.Ordinal);
            }
        }

        // Her own messages are masked as she sees the records: no overdueAmount (a salesperson does not read it), the
        // extra values left out (something is hidden from her), the order owned by bob left out of the snapshot.
        var welcome = await ShowAsync(engine.Keys["anna"], annasWelcome);
        var snapshot = JsonNode.Parse(welcome["snapshot"]!.GetValue<string>())!;
        Assert.Equal("Annas Kunde", snapshot["customer"]!["name"]!.GetValue<string>());
        Assert.Equal("B", snapshot["customer"]!["creditLevel"]!.GetValue<string>());
        Assert.Null(snapshot["customer"]!["overdueAmount"]);
        Assert.Null(snapshot["extra"]);
        var order = JsonNode.Parse((await ShowAsync(engine.Keys["anna"], annasOrder))["snapshot"]!.GetValue<string>())!;
        Assert.Null(order["order"]);
        Assert.DoesNotContain("BOB-ORDER-7", order.ToJsonString(), StringComparison.Ordinal);

        // bob reads the blacklist flag: "customer is blacklisted", never why.
        var bobList = await ListAsync(engine.Keys["bob"]);
        Assert.Equal(new[] { bobsWelcome, blacklisted }.Order(StringComparer.Ordinal), bobList.Select(m => m["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        var suppressed = bobList.Single(m => m["id"]!.GetValue<string>() == blacklisted);
        Assert.Equal("Suppressed", suppressed["state"]!.GetValue<string>());
        Assert.Equal("customer is blacklisted", suppressed["lastError"]!.GetValue<string>());

        // mia (marketing) reads every customer but not the blacklist flag or the amounts: every customer's mail, no ops
        // mail, and not even that the customer is blacklisted.
        var miaList = await ListAsync(engine.Keys["mia"]);
        Assert.DoesNotContain(miaList, m => m["id"]!.GetValue<string>() == ops);
        Assert.Equal(5, miaList.Count);
        var miaSuppressed = miaList.Single(m => m["id"]!.GetValue<string>() == blacklisted);
        Assert.DoesNotContain("blacklisted", miaSuppressed["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
        var miaBob = JsonNode.Parse((await ShowAsync(engine.Keys["mia"], bobsWelcome))["snapshot"]!.GetValue<string>())!;
        Assert.Null(miaBob["customer"]!["overdueAmount"]);
        Assert.Null(miaBob["customer"]!["blacklisted"]);

        // The administrator sees everything, the ops mail included, with the amounts — but the reason is gone for everyone.
        var adminBob = JsonNode.Parse((await ShowAsync(engine.Keys["admin"], bobsWelcome))["snapshot"]!.GetValue<string>())!;
        Assert.Equal(4711.5m, adminBob["customer"]!["overdueAmount"]!.GetValue<decimal>());
        Assert.Equal("customer is blacklisted", (await ShowAsync(engine.Keys["admin"], blacklisted))["lastError"]!.GetValue<string>());
        foreach (var key in new[] { "anna", "bob", "mia", "admin" })
        {
            Assert.DoesNotContain(BlacklistReason, string.Join('\n', (await ListAsync(engine.Keys[key])).Select(m => m.ToJsonString())), StringComparison.Ordinal);
        }

        // (The administrator may read the blacklistReason field itself: it is in the snapshot's customer, and only there.)
        var adminBlack = await ShowAsync(engine.Keys["admin"], blacklisted);
        Assert.Equal(BlacklistReason, JsonNode.Parse(adminBlack["snapshot"]!.GetValue<string>())!["customer"]!["blacklistReason"]!.GetValue<string>());
        adminBlack.AsObject().Remove("snapshot");
        Assert.DoesNotContain(BlacklistReason, adminBlack.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain(BlacklistReason, (await ShowAsync(engine.Keys["bob"], blacklisted)).ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain(BlacklistReason, engine.Log, StringComparison.Ordinal);

        // Paging over the few messages a user sees stays complete with a small page size (Link rel=next).
        var paged = new List<string>();
        string? next = "api/mail/messages?limit=1";
        while (next is not null)
        {
            using var response = await Send(http, HttpMethod.Get, next, engine.Keys["anna"]);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            paged.AddRange(JsonNode.Parse(text)!.AsArray().Select(m => m!["id"]!.GetValue<string>()));
            next = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1].TrimStart('/') : null;
        }

        Assert.Equal(new[] { annasWelcome, annasOrder }.Order(StringComparer.Ordinal), paged.Order(StringComparer.Ordinal));
    }

    private async Task<List<JsonNode>> ListAsync(string key)
    {
        using var response = await Send(engine.Http, HttpMethod.Get, "api/mail/messages?limit=1000", key);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!.AsArray().Select(m => m!).ToList();
    }

    private async Task<JsonNode> ShowAsync(string key, string id)
    {
        using var response = await Send(engine.Http, HttpMethod.Get, $"api/mail/messages/{id}", key);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!;
    }

    private static async Task<string> CreatedIdAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Created, text);
            return JsonNode.Parse(text)!["id"]!.GetValue<string>();
        }
    }

    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    /// <summary>One engine for the class: the shipped roles, anna, bob and mia with admin-scope keys, mail rules, and the customers.</summary>
    public sealed class Engine : IAsyncLifetime
    {
        private TestRoot? _root;
        private CrmProcess? _crm;

        public HttpClient Http { get; private set; } = null!;
        public Dictionary<string, string> Keys { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> Customers { get; } = new(StringComparer.Ordinal);

        public string Log => _crm?.Output ?? "";

        /// <summary>The identity provider's key: tokens signed with it are accepted (no scope claim: admin scope).</summary>
        public System.Security.Cryptography.RSA Signing { get; } = System.Security.Cryptography.RSA.Create(2048);

        public async Task InitializeAsync()
        {
            _root = new TestRoot(s =>
            {
                s["Webhooks"]!["AllowPrivateTargets"] = true; // the listeners are on loopback
                s["Webhooks"]!["PollInterval"] = "00:00:00.050";
                s["Templates"] = new JsonObject { ["Directory"] = Path.Combine(CrmProcess.HostOutput, "templates") };
                s["Rules"]!["Directory"] = "mail-rules";
                // Bearer tokens without a scope claim configured: every token has the admin scope, so the user must decide.
                s["Api"]!["Jwt"] = new JsonObject
                {
                    ["Issuer"] = Issuer, ["Audience"] = Audience,
                    ["SigningKeys"] = new JsonArray("idp-signing.pem"), ["UserClaim"] = "preferred_username",
                };
            });
            await File.WriteAllTextAsync(_root.File_("idp-signing.pem"), Signing.ExportSubjectPublicKeyInfoPem());
            Directory.CreateDirectory(_root.File_("mail-rules/events"));
            Directory.CreateDirectory(_root.File_("mail-rules/segments"));
            await File.WriteAllTextAsync(_root.File_("mail-rules/events/welcome.js"),
                "// @entity customer\n// @stage async\nif (event.operation === 'create') {\n" +
                "  api.sendMail({ template: 'welcome', model: { note: 'extra for ' + record.name } });\n" +
                "  if (record.tags.includes('ops')) api.sendMail({ template: 'welcome', to: 'ops@example.com', customerId: '', key: 'ops:' + record.id });\n}\n");
            await File.WriteAllTextAsync(_root.File_("mail-rules/events/order.js"),
                "// @entity order\n// @stage async\nif (event.operation === 'create') api.sendMail({ template: 'order-confirmation', model: { order: record.id } });\n");

            var seed = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(CrmProcess.HostOutput, "security.json")),
                documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!.AsObject();
            var users = seed["users"]!.AsArray();
            users.Add(JsonNode.Parse("""{ "id": "anna", "name": "Anna", "unit": "sales", "roles": ["salesperson"] }"""));
            users.Add(JsonNode.Parse("""{ "id": "bob", "name": "Bob", "unit": "service", "roles": ["salesperson"] }"""));
            users.Add(JsonNode.Parse("""{ "id": "mia", "name": "Mia", "unit": "marketing", "roles": ["marketing"] }"""));
            var seedFile = _root.File_("security-webhook-mail.json");
            await File.WriteAllTextAsync(seedFile, seed.ToJsonString());
            var (code, text) = await CrmProcess.RunAsync(_root.Path, null, "security", "seed", seedFile);
            Assert.True(code == 0, text);
            foreach (var user in new[] { "anna", "bob", "mia", "admin" })
            {
                (code, text) = await CrmProcess.RunAsync(_root.Path, null, "apikeys", "create", "--name", "key-" + user, "--scope", "admin", "--user", user);
                Assert.True(code == 0, text);
                Keys[user] = ApiHostTests.ParseKey(text);
            }

            // A key without a user (sys-api, role integration): an admin scope alone manages nobody else's subscriptions.
            (code, text) = await CrmProcess.RunAsync(_root.Path, null, "apikeys", "create", "--name", "key-nouser", "--scope", "admin");
            Assert.True(code == 0, text);
            Keys["nouser"] = ApiHostTests.ParseKey(text);

            _crm = CrmProcess.Start(_root.Path, null, "run");
            await _crm.WaitForReadyAsync();
            Http = new HttpClient { BaseAddress = _root.ApiBase, Timeout = Bound };
            using (await ApiHostTests.EventuallyAsync(() => Http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
            {
            }

            Customers["bob"] = await CreateAsync("customers", new
            {
                name = "Bobs Kunde", owner = "bob", emails = new[] { "einkauf@bob-kunde.example" }, overdueAmount = 4711.5m, creditLevel = "C",
            });
            Customers["black"] = await CreateAsync("customers", new
            {
                name = "Schwarz GmbH", owner = "bob", emails = new[] { "info@schwarz.example" }, blacklisted = true, blacklistReason = BlacklistReason,
            });
            Customers["anna"] = await CreateAsync("customers", new
            {
                name = "Annas Kunde", owner = "anna", emails = new[] { "info@annas-kunde.example" }, overdueAmount = 99.5m, creditLevel = "B",
            });
            Customers["ops"] = await CreateAsync("customers", new { name = "Ops Kunde", owner = "admin", emails = new[] { "ops-kunde@example.com" }, tags = new[] { "ops" } });
            await CreateAsync("orders", new { customerId = Customers["anna"], number = "BOB-ORDER-7", owner = "bob" });
        }

        private async Task<string> CreateAsync(string route, object body)
        {
            using var response = await Send(Http, HttpMethod.Post, $"api/{route}", Keys["admin"], body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST {route}: {(int)response.StatusCode} {text}");
            return JsonNode.Parse(text)!["id"]!.GetValue<string>();
        }

        /// <summary>The outbox as the administrator sees it, once it holds <paramref name="count"/> messages.</summary>
        public async Task<List<JsonNode>> WaitForMailAsync(int count)
        {
            JsonArray? items = null;
            using (await ApiHostTests.EventuallyAsync(() => Send(Http, HttpMethod.Get, "api/mail/messages?limit=1000", Keys["admin"]), r =>
                   {
                       items = r.StatusCode == HttpStatusCode.OK ? JsonNode.Parse(r.Content.ReadAsStringAsync().GetAwaiter().GetResult())!.AsArray() : null;
                       return items?.Count >= count;
                   }, $"{count} messages in the outbox"))
            {
            }

            return items!.Select(m => m!).ToList();
        }

        public Task NoSecretInLogAsync(ITestOutputHelper output)
        {
            foreach (var key in Keys.Values)
            {
                Assert.DoesNotContain(key, Log, StringComparison.Ordinal);
            }

            output.WriteLine($"{Log.Split('\n').Length} log lines checked");
            return Task.CompletedTask;
        }

        public async Task DisposeAsync()
        {
            Signing.Dispose();
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

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Review findings 9, 12 and 13 and the denial shapes, through the real <c>crm</c> process over HTTP: ids the engine acts
/// as cannot be taken, keys and tokens never act as a system user (an e-mail-mapped token needs a verified address),
/// customer orders and the timeline hide protected order and activity fields, and denials are 403s naming the privilege.
/// </summary>
public sealed class SecurityIdentityMaskTests(ITestOutputHelper output)
{
    private const string Issuer = "https://idp.example.test/realms/crm";
    private const string Audience = "crm-api";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Engine_ids_are_reserved_and_keys_and_tokens_never_act_as_system_users_or_unverified_addresses()
    {
        using var signing = RSA.Create(2048);
        using var root = new TestRoot(settings => settings["Api"]!["Jwt"] = new JsonObject
        {
            ["Issuer"] = Issuer,
            ["Audience"] = Audience,
            ["SigningKeys"] = new JsonArray("idp-signing.pem"),
            ["UserClaim"] = "email",
        });
        File.WriteAllText(root.File_("idp-signing.pem"), signing.ExportSubjectPublicKeyInfoPem());
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);

        // The ids the engine writes as, and sys-* beyond its own system users, are refused naming the id (finding 9).
        foreach (var id in new[] { "scheduler", "mail", "Unsubscribe", "sys-helper" })
        {
            var (failed, why) = await Crm(root, "users", "create", id, "--name", "Taken", "--unit", "sales", "--role", "salesperson");
            Assert.True(failed != 0, why);
            Assert.Contains($"'{id}' is reserved", why, StringComparison.Ordinal);
        }

        await File.WriteAllTextAsync(root.File_("mail-user.json"),
            """{ "users": [ { "id": "mail", "name": "Mail person", "unit": "sales", "roles": ["salesperson"] } ] }""");
        var (code, text) = await Crm(root, "security", "seed", root.File_("mail-user.json"));
        Assert.True(code != 0, text);
        Assert.Contains("users[0] (mail).id: 'mail' is reserved", text, StringComparison.Ordinal);

        // No key for a system user (finding 13).
        (code, text) = await Crm(root, "apikeys", "create", "--name", "engine-key", "--scope", "admin", "--user", "sys-engine");
        Assert.True(code != 0, text);
        Assert.Contains("--user 'sys-engine' is a system user", text, StringComparison.Ordinal);

        const string anna = "anna@example.com";
        (code, text) = await Crm(root, "users", "create", anna, "--name", "Anna Berg", "--unit", "sales", "--role", "salesperson");
        Assert.True(code == 0, text);
        (code, text) = await Crm(root, "apikeys", "create", "--name", "root", "--scope", "admin", "--user", "admin");
        Assert.True(code == 0, text);
        var adminKey = ApiHostTests.ParseKey(text);

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
        using (await ApiHostTests.EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
        {
        }

        // The admin API refuses a reserved id as a bad id (422, field id) and creates nothing.
        using (var response = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/security/users", adminKey,
                   new { id = "unsubscribe", name = "U", unit = "sales", roles = new[] { "administrator" } }))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.UnprocessableEntity);
            Assert.Equal("id", problem["field"]?.GetValue<string>());
            Assert.Contains("'unsubscribe' is reserved", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        using (var response = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/security/users/unsubscribe", adminKey))
        {
            await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.NotFound);
        }

        // A genuine token naming a system user: 403 saying why, nothing read.
        using (var response = await Bearer(http, HttpMethod.Get, "api/customers", Token(signing, "sys-engine", verified: true)))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Contains("user 'sys-engine' (claim 'email'), who is a system user", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Mapped by e-mail: only an address the provider verified names the user.
        foreach (var unverified in new[] { Token(signing, anna, verified: false), Token(signing, anna, verified: null) })
        {
            using var response = await Bearer(http, HttpMethod.Post, "api/customers", unverified, new { name = "Unverified GmbH" });
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Contains($"names user '{anna}' by e-mail (claim 'email'), but the provider has not verified that address", problem["detail"]!.GetValue<string>(),
                StringComparison.Ordinal);
        }

        using (var created = await Bearer(http, HttpMethod.Post, "api/customers", Token(signing, anna, verified: true), new { name = "Verified GmbH" }))
        {
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, $"{(int)created.StatusCode}: {body}");
            Assert.Equal(anna, JsonNode.Parse(body)!["owner"]!.GetValue<string>());
        }

        using (var list = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/customers?limit=100", adminKey))
        {
            var items = JsonNode.Parse(await list.Content.ReadAsStringAsync())!["items"]!.AsArray();
            Assert.Equal(["Verified GmbH"], items.Select(i => i!["name"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task Orders_and_timeline_hide_protected_fields_and_denials_are_403s_naming_the_privilege()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        // Protected order and activity fields beside the shipped customer ones: only the administrator's "*" reaches them.
        await File.WriteAllTextAsync(root.File_("more-fields.json"), """{ "protectedFields": { "order": ["externalIds"], "activity": ["body"] } }""");
        var (code, text) = await Crm(root, "security", "seed", root.File_("more-fields.json"));
        Assert.True(code == 0, text);
        foreach (var (user, role) in new[] { ("anna", "salesperson"), ("bob", "salesperson"), ("aud", "auditor") })
        {
            (code, text) = await Crm(root, "users", "create", user, "--name", user, "--unit", "sales", "--role", role);
            Assert.True(code == 0, text);
        }

        var keys = new Dictionary<string, string>();
        foreach (var user in new[] { "admin", "anna", "bob", "aud" })
        {
            (code, text) = await Crm(root, "apikeys", "create", "--name", user + "-key", "--scope", "admin", "--user", user);
            Assert.True(code == 0, text);
            keys[user] = ApiHostTests.ParseKey(text);
        }

        string customer = "", bobs = "";
        await root.WithStoreAsync(async store =>
        {
            customer = (await store.Customers.CreateAsync(new Customer { Name = "Anna Kunde", Owner = "anna", CreditLevel = "B" })).Id;
            bobs = (await store.Customers.CreateAsync(new Customer { Name = "Bob Kunde", Owner = "bob" })).Id;
            await store.Orders.CreateAsync(new Order
            {
                CustomerId = customer, Owner = "anna", Number = "A-1", ExternalIds = { ["erp"] = "K-99812" },
                Lines = [new OrderLine { Description = "Widget", Quantity = 2, UnitPrice = 5 }],
            });
            await store.Activities.CreateAsync(new Activity
            {
                CustomerId = customer, Owner = "anna", Subject = "Visit", Body = "secret body", DueAt = DateTimeOffset.UtcNow.AddDays(1),
            });
        });

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
        using (await ApiHostTests.EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
        {
        }

        async Task<JsonNode> Ok(string user, HttpMethod method, string path, object? body = null, string? ifMatch = null, HttpStatusCode status = HttpStatusCode.OK)
        {
            using var response = await Send(http, method, path, keys[user], body, ifMatch);
            var answer = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == status, $"{user} {method} {path}: expected {(int)status}, got {(int)response.StatusCode}: {answer}");
            return JsonNode.Parse(answer)!;
        }

        async Task<JsonNode> Denied(string user, HttpMethod method, string path, object? body, string? ifMatch, HttpStatusCode status)
        {
            using var response = await Send(http, method, path, keys[user], body, ifMatch);
            return await ApiHostTests.AssertProblemAsync(response, status);
        }

        // Finding 12: the customer's orders and timeline without the hidden fields, as /api/orders answers them.
        var annasOrders = (await Ok("anna", HttpMethod.Get, $"api/customers/{customer}/orders"))["items"]!.AsArray();
        Assert.Equal("A-1", Assert.Single(annasOrders)!["number"]!.GetValue<string>());
        Assert.Null(annasOrders[0]!["externalIds"]);
        Assert.Null((await Ok("anna", HttpMethod.Get, $"api/orders/{annasOrders[0]!["id"]!.GetValue<string>()}"))["externalIds"]);
        Assert.Equal("K-99812", (await Ok("admin", HttpMethod.Get, $"api/customers/{customer}/orders"))["items"]![0]!["externalIds"]!["erp"]!.GetValue<string>());
        foreach (var order in new[] { "newest", "due" })
        {
            var timeline = (await Ok("anna", HttpMethod.Get, $"api/customers/{customer}/timeline?order={order}"))["items"]!.AsArray();
            Assert.Equal("Visit", Assert.Single(timeline)!["subject"]!.GetValue<string>());
            Assert.Null(timeline[0]!["body"]);
            Assert.Equal("secret body", (await Ok("admin", HttpMethod.Get, $"api/customers/{customer}/timeline?order={order}"))["items"]![0]!["body"]!.GetValue<string>());
        }

        // Contacts: a caller who may read but not write the customer gets the 403 naming customer:write before any talk
        // of If-Match or contacts; a caller who may not read it gets the 404 of an unknown customer.
        using (var card = await Send(http, HttpMethod.Get, $"api/customers/{customer}", keys["anna"], null, null))
        {
            Assert.Equal(HttpStatusCode.OK, card.StatusCode);
            var etag = card.Headers.ETag!.Tag;
            foreach (var (method, path, ifMatch) in new[]
                     {
                         (HttpMethod.Post, "contacts", (string?)null),
                         (HttpMethod.Post, "contacts", "\"999\""),
                         (HttpMethod.Patch, "contacts/nobody", etag),
                         (HttpMethod.Delete, "contacts/nobody", (string?)null),
                     })
            {
                var problem = await Denied("aud", method, $"api/customers/{customer}/{path}", method == HttpMethod.Delete ? null : new { name = "Eve" }, ifMatch,
                    HttpStatusCode.Forbidden);
                Assert.Equal("customer:write", problem["missingPrivilege"]!.GetValue<string>());
                Assert.Contains("denied (customer:write)", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            }

            var unseen = await Denied("bob", HttpMethod.Post, $"api/customers/{customer}/contacts", new { name = "Eve" }, etag, HttpStatusCode.NotFound);
            Assert.Null(unseen["missingPrivilege"]);
            Assert.Equal("Eve", (await Ok("anna", HttpMethod.Post, $"api/customers/{customer}/contacts", new { name = "Eve" }, etag, HttpStatusCode.Created))["name"]!
                .GetValue<string>());
        }

        // A refused protected field: one sentence, then "Nothing was stored."
        using (var card = await Send(http, HttpMethod.Get, $"api/customers/{customer}", keys["anna"], null, null))
        {
            var problem = await Denied("anna", HttpMethod.Patch, $"api/customers/{customer}", new { creditLevel = "A" }, card.Headers.ETag!.Tag, HttpStatusCode.Forbidden);
            Assert.Equal("customer.creditLevel:write", problem["missingPrivilege"]!.GetValue<string>());
            Assert.EndsWith("may not change customer.creditLevel. Nothing was stored.", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        Assert.Equal("B", (await Ok("admin", HttpMethod.Get, $"api/customers/{customer}"))["creditLevel"]!.GetValue<string>());

        // Ownership transfer: anna may not reassign bob's records: 403 naming customer:assign, and nothing moves.
        var transfer = await Denied("anna", HttpMethod.Post, "api/security/owners/transfer", new { from = "bob", to = "anna" }, null, HttpStatusCode.Forbidden);
        Assert.Equal("customer:assign", transfer["missingPrivilege"]!.GetValue<string>());
        Assert.Equal("bob", (await Ok("admin", HttpMethod.Get, $"api/customers/{bobs}"))["owner"]!.GetValue<string>());
    }

    private static async Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string path, string key, object? body, string? ifMatch)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Api-Key", key);
        if (ifMatch is not null)
        {
            request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request);
    }

    /// <summary>A token as a provider mapping users by e-mail issues it; <paramref name="verified"/> null leaves email_verified out.</summary>
    private static string Token(RSA key, string email, bool? verified)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object> { ["email"] = email, ["sub"] = "id-" + email };
        if (verified is { } v)
        {
            claims["email_verified"] = v;
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now.AddMinutes(-1).UtcDateTime,
            NotBefore = now.AddMinutes(-1).UtcDateTime,
            Expires = now.AddMinutes(30).UtcDateTime,
            Claims = claims,
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(key), SecurityAlgorithms.RsaSha256),
        });
    }

    private static Task<HttpResponseMessage> Bearer(HttpClient http, HttpMethod method, string path, string token, object? body = null) =>
        SecurityIdentityTests.Bearer(http, method, path, token, body);

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}

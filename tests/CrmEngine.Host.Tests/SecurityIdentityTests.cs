using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Who calls the API, through the real <c>crm</c> process over HTTP: keys bound to users (made with
/// <c>crm apikeys create --user</c>), bearer tokens signed by a key the test creates (the engine reads its public half
/// from a PEM file), both side by side, and the refusals: a bad token is 401, a token or key whose user is unknown or
/// deactivated is 403 naming why.
/// </summary>
public sealed class SecurityIdentityTests(ITestOutputHelper output)
{
    private const string Issuer = "https://idp.example.test/realms/crm";
    private const string Audience = "crm-api";
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Keys_bound_to_users_and_bearer_tokens_act_as_the_user_and_refuse_bad_tokens_and_deactivated_users()
    {
        using var signing = RSA.Create(2048);
        using var stranger = RSA.Create(2048);
        using var root = JwtRoot(signing);
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        var (code, text) = await Crm(root, "users", "create", "anna", "--name", "Anna Berg", "--unit", "sales", "--role", "salesperson");
        Assert.True(code == 0, text);

        // Keys: the user must exist and be active; list shows who a key acts as.
        (code, text) = await Crm(root, "apikeys", "create", "--name", "ghost-key", "--scope", "write", "--user", "ghost");
        Assert.NotEqual(0, code);
        Assert.Contains("--user 'ghost': there is no such user", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "apikeys", "create", "--name", "anna-key", "--scope", "write", "--user", "anna");
        Assert.True(code == 0, text);
        Assert.Contains("acts as anna", text, StringComparison.Ordinal);
        var annaKey = ApiHostTests.ParseKey(text);
        (code, text) = await Crm(root, "apikeys", "create", "--name", "plain", "--scope", "read");
        Assert.True(code == 0, text);
        (code, text) = await Crm(root, "apikeys", "list");
        Assert.Matches(@"anna-key\s+key_\w+\s+write\s+anna\s", text);
        Assert.Matches(@"plain\s+key_\w+\s+read\s+-\s", text);

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
        using (await ApiHostTests.EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
        {
        }

        // The key acts as anna: her customer's change names her.
        string keyCustomer;
        using (var created = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/customers", annaKey, new { name = "Key Kunde GmbH" }))
        {
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, $"{(int)created.StatusCode}: {body}");
            keyCustomer = JsonNode.Parse(body)!["id"]!.GetValue<string>();
        }

        // A token for anna acts as anna too, side by side with the key.
        var token = Token(signing, "anna");
        string tokenCustomer;
        using (var created = await Bearer(http, HttpMethod.Post, "api/customers", token, new { name = "Token Kunde GmbH" }))
        {
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, $"{(int)created.StatusCode}: {body}");
            tokenCustomer = JsonNode.Parse(body)!["id"]!.GetValue<string>();
        }

        using (var read = await Bearer(http, HttpMethod.Get, $"api/customers/{keyCustomer}", token))
        {
            Assert.True(read.StatusCode == HttpStatusCode.OK, await read.Content.ReadAsStringAsync());
        }

        using (var changes = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/changes?limit=1000", annaKey))
        {
            var body = await changes.Content.ReadAsStringAsync();
            Assert.True(changes.StatusCode == HttpStatusCode.OK, body);
            var items = JsonNode.Parse(body)!["changes"]!.AsArray();
            foreach (var id in new[] { keyCustomer, tokenCustomer })
            {
                var item = items.Single(i => i!["id"]!.GetValue<string>() == id);
                Assert.Equal("anna", item!["actor"]!.GetValue<string>());
            }
        }

        // Bad tokens: 401 saying what is wrong (never the token).
        var now = DateTimeOffset.UtcNow;
        var refused = new (string Token, string Why)[]
        {
            (Token(signing, "anna", issuer: "https://evil.example.test"), "was not issued by"),
            (Token(signing, "anna", audience: "other-api"), "is not for the audience"),
            (Token(signing, "anna", expires: now.AddMinutes(-10), notBefore: now.AddMinutes(-30)), "expired"),
            (Token(stranger, "anna"), "signature does not verify"),
            ("not.a.token", "not"),
        };
        foreach (var (bad, why) in refused)
        {
            using var response = await Bearer(http, HttpMethod.Get, "api/customers", bad);
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Unauthorized);
            Assert.Contains(why, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        }

        // A genuine token naming nobody we know: 403 naming the user.
        using (var response = await Bearer(http, HttpMethod.Get, "api/customers", Token(signing, "zed")))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Contains("user 'zed'", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("does not exist", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // anna leaves: her key and her tokens may do nothing from now on (403 saying she is deactivated).
        (code, text) = await Crm(root, "users", "deactivate", "anna");
        Assert.True(code == 0, text);
        using (var response = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/customers/{keyCustomer}", annaKey))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Contains("acts as user 'anna', who is deactivated", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        using (var response = await Bearer(http, HttpMethod.Get, $"api/customers/{keyCustomer}", Token(signing, "anna")))
        {
            var problem = await ApiHostTests.AssertProblemAsync(response, HttpStatusCode.Forbidden);
            Assert.Contains("user 'anna' (claim 'preferred_username'), who is deactivated", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // The refusal is logged with the key's name and the user, never the key or the token.
        await crm.WaitForLineAsync(l => l.Contains("key anna-key acts as user anna, who is deactivated", StringComparison.Ordinal), Bound);
        Assert.DoesNotContain(annaKey, crm.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(token, crm.Output, StringComparison.Ordinal);

        // A key made for a deactivated user is refused at once.
        (code, text) = await Crm(root, "apikeys", "create", "--name", "anna-2", "--scope", "read", "--user", "anna");
        Assert.NotEqual(0, code);
        Assert.Contains("--user 'anna' is deactivated", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_api_manages_users_teams_units_roles_shares_and_transfers_as_the_calling_administrator()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna Berg", "--unit", "sales", "--role", "salesperson")).Code);
        var (code, text) = await Crm(root, "apikeys", "create", "--name", "root", "--scope", "admin", "--user", "admin");
        Assert.True(code == 0, text);
        var adminKey = ApiHostTests.ParseKey(text);
        (code, text) = await Crm(root, "apikeys", "create", "--name", "anna-admin", "--scope", "admin", "--user", "anna");
        Assert.True(code == 0, text);
        var annaKey = ApiHostTests.ParseKey(text);

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
        using (await ApiHostTests.EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
        {
        }

        async Task<JsonNode> Ok(HttpMethod method, string path, object? body = null, HttpStatusCode status = HttpStatusCode.OK, string? key = null)
        {
            using var response = await ApiHostTests.SendAsync(http, method, path, key ?? adminKey, body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == status, $"{method} {path}: expected {(int)status}, got {(int)response.StatusCode}: {text}");
            return JsonNode.Parse(text)!;
        }

        async Task<JsonNode> Problem(HttpMethod method, string path, object? body, HttpStatusCode status, string? field, string? key = null)
        {
            using var response = await ApiHostTests.SendAsync(http, method, path, key ?? adminKey, body);
            var problem = await ApiHostTests.AssertProblemAsync(response, status);
            if (field is not null)
            {
                Assert.Equal(field, problem["field"]?.GetValue<string>());
            }

            return problem;
        }

        // Roles are listed as the seed file made them.
        var roles = (await Ok(HttpMethod.Get, "api/security/roles")).AsArray();
        Assert.Contains(roles, r => r!["id"]!.GetValue<string>() == "salesperson");
        Assert.Equal("own", (await Ok(HttpMethod.Get, "api/security/roles/salesperson"))["privileges"]!["customer"]!["read"]!.GetValue<string>());

        // Users: create (refusals name the field), update, roles, deactivate.
        await Problem(HttpMethod.Post, "api/security/users", new { id = "carl", unit = "sales" }, HttpStatusCode.BadRequest, "name");
        var bad = await Problem(HttpMethod.Post, "api/security/users", new { id = "carl", name = "Carl", unit = "nowhere" }, HttpStatusCode.UnprocessableEntity, "unit");
        Assert.Contains("there is no unit 'nowhere'", bad["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        var carl = await Ok(HttpMethod.Post, "api/security/users", new { id = "carl", name = "Carl Lund", unit = "sales", roles = new[] { "salesperson" } }, HttpStatusCode.Created);
        Assert.Equal("sales", carl["unit"]!.GetValue<string>());
        await Problem(HttpMethod.Post, "api/security/users", new { id = "carl", name = "Carl", unit = "sales" }, HttpStatusCode.Conflict, "id");
        // The answer follows the kind of refusal, not words the caller put into the message: a unit called "already exists"
        // is still a wrong reference (422 unit, not 409), a manager "x unit y" is about the manager, and a transfer to a
        // user named "denied (customer:assign)" is wrong input, not a denial.
        await Problem(HttpMethod.Post, "api/security/users", new { id = "dora", name = "Dora", unit = "already exists" }, HttpStatusCode.UnprocessableEntity, "unit");
        await Problem(HttpMethod.Patch, "api/security/users/carl", new { manager = "x unit y" }, HttpStatusCode.UnprocessableEntity, "manager");
        await Problem(HttpMethod.Post, "api/security/owners/transfer", new { from = "carl", to = "denied (customer:assign)" }, HttpStatusCode.UnprocessableEntity, "to");
        Assert.Equal("carl@example.com", (await Ok(HttpMethod.Patch, "api/security/users/carl", new { email = "carl@example.com" }))["email"]!.GetValue<string>());
        Assert.Contains("auditor", (await Ok(HttpMethod.Put, "api/security/users/carl/roles/auditor"))["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.DoesNotContain("auditor", (await Ok(HttpMethod.Delete, "api/security/users/carl/roles/auditor"))["roles"]!.AsArray().Select(r => r!.GetValue<string>()));
        await Problem(HttpMethod.Put, "api/security/users/carl/roles/boss", null, HttpStatusCode.NotFound, null);
        await Problem(HttpMethod.Get, "api/security/users/nobody", null, HttpStatusCode.NotFound, null);

        // Teams and units.
        await Ok(HttpMethod.Post, "api/security/units", new { id = "east", name = "Sales east", parent = "sales" }, HttpStatusCode.Created);
        Assert.Contains((await Ok(HttpMethod.Get, "api/security/units")).AsArray(), u => u!["id"]!.GetValue<string>() == "east" && u["parent"]!.GetValue<string>() == "sales");
        await Ok(HttpMethod.Post, "api/security/teams", new { id = "east-desk", name = "East desk", unit = "east", roles = new[] { "salesperson" } }, HttpStatusCode.Created);
        await Ok(HttpMethod.Put, "api/security/teams/east-desk/members/carl");
        var team = await Ok(HttpMethod.Get, "api/security/teams/east-desk");
        Assert.Equal(["carl"], team["members"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(["salesperson"], team["roles"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Empty((await Ok(HttpMethod.Delete, "api/security/teams/east-desk/members/carl"))["teams"]!.AsArray());

        // Shares of a record of anna's.
        var customer = (await Ok(HttpMethod.Post, "api/customers", new { name = "Anna's Kunde", owner = "anna" }, HttpStatusCode.Created))["id"]!.GetValue<string>();
        var shared = await Ok(HttpMethod.Put, $"api/security/shares/customer/{customer}/user:carl", new { privileges = new[] { "read", "write" } });
        Assert.Equal("user:carl", shared["grants"]![0]!["principal"]!.GetValue<string>());
        Assert.Equal(["read", "write"], shared["grants"]![0]!["privileges"]!.AsArray().Select(p => p!.GetValue<string>()));
        await Problem(HttpMethod.Put, $"api/security/shares/customer/{customer}/user:carl", new { privileges = new[] { "fly" } }, HttpStatusCode.BadRequest, "privileges");
        await Problem(HttpMethod.Put, $"api/security/shares/customer/{customer}/user:ghost", new { privileges = new[] { "read" } }, HttpStatusCode.UnprocessableEntity, "principal");
        Assert.Empty((await Ok(HttpMethod.Delete, $"api/security/shares/customer/{customer}/user:carl"))["grants"]!.AsArray());
        await Problem(HttpMethod.Delete, $"api/security/shares/customer/{customer}/user:carl", null, HttpStatusCode.NotFound, null);

        // anna leaves: deactivated, her customer passes to carl in one audited write by the caller.
        Assert.True((await Ok(HttpMethod.Post, "api/security/users/anna/deactivate"))["deactivated"]!.GetValue<bool>());
        await Problem(HttpMethod.Post, "api/security/owners/transfer", new { from = "anna", to = "ghost" }, HttpStatusCode.UnprocessableEntity, "to");
        var moved = await Ok(HttpMethod.Post, "api/security/owners/transfer", new { from = "anna", to = "carl" });
        Assert.Equal(1, moved["customers"]!.GetValue<int>());
        Assert.Equal("carl", (await Ok(HttpMethod.Get, $"api/customers/{customer}"))["owner"]!.GetValue<string>());

        // Every change names the calling administrator.
        var changes = (await Ok(HttpMethod.Get, "api/changes?limit=1000"))["changes"]!.AsArray();
        Assert.Equal("admin", changes.Last(c => c!["entity"]!.GetValue<string>() == "security_users" && c["id"]!.GetValue<string>() == "carl")!["actor"]!.GetValue<string>());
        Assert.Equal("admin", changes.Last(c => c!["entity"]!.GetValue<string>() == "customer" && c["id"]!.GetValue<string>() == customer)!["actor"]!.GetValue<string>());

        // A salesperson with an admin key is still a salesperson (anna is deactivated now; carl's own admin key shows it).
        (code, text) = await Crm(root, "apikeys", "create", "--name", "carl-admin", "--scope", "admin", "--user", "carl");
        Assert.True(code == 0, text);
        var refused = await Problem(HttpMethod.Get, "api/security/users", null, HttpStatusCode.Forbidden, null, ApiHostTests.ParseKey(text));
        Assert.Equal("security:write", refused["missingPrivilege"]!.GetValue<string>());
        Assert.Contains("user 'carl' may not administer security", refused["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        await Problem(HttpMethod.Get, "api/security/users", null, HttpStatusCode.Forbidden, null, annaKey);

        // Listed in OpenAPI.
        using var openApi = await http.GetAsync("openapi/v1.json");
        var paths = JsonNode.Parse(await openApi.Content.ReadAsStringAsync())!["paths"]!.AsObject();
        foreach (var path in new[] { "/api/security/users", "/api/security/users/{id}", "/api/security/teams/{id}/members/{user}", "/api/security/shares/{entity}/{recordId}/{principal}", "/api/security/owners/transfer" })
        {
            Assert.True(paths.ContainsKey(path), path + " is not in the OpenAPI document");
        }
    }

    /// <summary>A root whose engine accepts tokens of <see cref="Issuer"/> for <see cref="Audience"/>, verified with the public half of <paramref name="signing"/>.</summary>
    internal static TestRoot JwtRoot(RSA signing)
    {
        var root = new TestRoot(settings => settings["Api"]!["Jwt"] = new JsonObject
        {
            ["Issuer"] = Issuer,
            ["Audience"] = Audience,
            ["SigningKeys"] = new JsonArray("idp-signing.pem"),
            ["UserClaim"] = "preferred_username",
        });
        File.WriteAllText(root.File_("idp-signing.pem"), signing.ExportSubjectPublicKeyInfoPem());
        return root;
    }

    /// <summary>A token as an OpenID Connect provider would issue it, signed with <paramref name="key"/> (RS256).</summary>
    internal static string Token(RSA key, string user, string issuer = Issuer, string audience = Audience, DateTimeOffset? expires = null,
        DateTimeOffset? notBefore = null, string? scope = null)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object> { ["preferred_username"] = user, ["sub"] = "id-" + user };
        if (scope is not null)
        {
            claims["scope"] = scope;
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = (notBefore ?? now.AddMinutes(-1)).UtcDateTime,
            NotBefore = (notBefore ?? now.AddMinutes(-1)).UtcDateTime,
            Expires = (expires ?? now.AddMinutes(30)).UtcDateTime,
            Claims = claims,
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(key), SecurityAlgorithms.RsaSha256),
        });
    }

    internal static async Task<HttpResponseMessage> Bearer(HttpClient http, HttpMethod method, string path, string token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await http.SendAsync(request);
    }

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}

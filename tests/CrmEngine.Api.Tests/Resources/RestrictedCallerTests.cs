using System.Net;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api.Keys;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Security;

namespace CrmEngine.Api.Tests.Resources;

/// <summary>
/// What a restricted caller (a salesperson with own depth) must not learn through the side doors of the resource API:
/// segment member counts and merge redirects. One engine with the shipped roles seeded, two salespeople and an
/// administrator, each with a key bound to them.
/// </summary>
public sealed class RestrictedCallerTests : IAsyncLifetime
{
    private const string Vip = "gap-vip";
    private const string Empty = "gap-empty";

    private readonly ResourceApiFixture.FakeRedirects _redirects = new();
    private readonly string _rules = Path.Combine(Path.GetTempPath(), "crm-api-restricted-rules", Guid.NewGuid().ToString("N"));
    private ApiTestHost _host = null!;
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_rules, "segments"));
        await File.WriteAllTextAsync(Path.Combine(_rules, "segments", Vip + ".js"), $"return customer.tags.includes('{Vip}');\n");
        await File.WriteAllTextAsync(Path.Combine(_rules, "segments", Empty + ".js"), "return false;\n");
        _host = await ResourceApiFixture.StartAsync(_rules, _redirects);
        var admin = _host.GetService<SecurityAdministration>();
        await admin.SeedAsync(SeedFile.Load(BearerTokenTests.ShippedSeed()), "admin");
        foreach (var user in new[] { "anna", "bob" })
        {
            await admin.CreateUserAsync(new SecurityUser { Id = user, Name = user, BusinessUnit = "sales", Roles = ["salesperson"] }, "admin");
        }

        var keys = _host.GetService<ApiKeyAdministration>();
        foreach (var user in new[] { "anna", "bob", "admin" })
        {
            _keys[user] = (await keys.CreateAsync("key-" + user, ApiScope.Write, null, user)).Key;
        }
    }

    public Task DisposeAsync() => ResourceApiFixture.StopAsync(_host, _rules);

    private HttpClient Client(string user) => ResourceApiFixture.NoRedirectClient(_host, _keys[user]);

    private async Task<string> CustomerAsync(string owner, bool vip) =>
        (await _host.Store().Customers.CreateAsync(new Customer { Name = Api.Unique(owner), Owner = owner, Tags = vip ? [Vip] : [] })).Id;

    private async Task<Dictionary<string, long>> CountsAsync(string user)
    {
        using var client = Client(user);
        using var response = await client.GetAsync("/api/segments");
        var items = (await Api.OkJsonAsync(response)).GetProperty("items").EnumerateArray();
        return items.ToDictionary(s => s.Str("name"), s => s.GetProperty("members").GetInt64());
    }

    [Fact]
    public async Task Segment_member_counts_are_of_the_members_the_caller_may_read()
    {
        // anna: 2 members of 3 visible customers (fewer than the 5 members: her customers are walked);
        // bob: 3 members of 7 visible customers (more than the members: the members are walked).
        for (var i = 0; i < 2; i++)
        {
            await CustomerAsync("anna", vip: true);
        }

        await CustomerAsync("anna", vip: false);
        for (var i = 0; i < 3; i++)
        {
            await CustomerAsync("bob", vip: true);
        }

        for (var i = 0; i < 4; i++)
        {
            await CustomerAsync("bob", vip: false);
        }

        await Eventually.TrueAsync(async () => (await CountsAsync("admin"))[Vip] == 5, "the administrator counts all 5 members");
        Assert.Equal(new Dictionary<string, long> { [Vip] = 2, [Empty] = 0 }, await CountsAsync("anna"));
        Assert.Equal(new Dictionary<string, long> { [Vip] = 3, [Empty] = 0 }, await CountsAsync("bob"));
        Assert.Equal(0, (await CountsAsync("admin"))[Empty]);
    }

    [Fact]
    public async Task A_merged_id_redirects_only_a_caller_who_may_read_the_kept_customer()
    {
        var kept = await CustomerAsync("bob", vip: false);
        var gone = "0" + Guid.NewGuid().ToString("N")[..20];
        var nobody = "0" + Guid.NewGuid().ToString("N")[..20];
        _redirects.Map[gone] = kept;

        using var bob = Client("bob");
        using var anna = Client("anna");
        using (var redirected = await bob.GetAsync($"/api/customers/{gone}/contacts"))
        {
            Assert.Equal(HttpStatusCode.PermanentRedirect, redirected.StatusCode);
            Assert.EndsWith($"/api/customers/{kept}/contacts", redirected.Headers.Location!.ToString(), StringComparison.Ordinal);
        }

        using (var deleted = await bob.DeleteAsync($"/api/customers/{gone}"))
        {
            var problem = await ApiTestHost.AssertProblemAsync(deleted, 404);
            Assert.Equal(kept, problem.GetProperty("mergedInto").GetString());
        }

        // anna may not read bob's customer: the same 404 as for an id nobody has, with no trace of the kept id.
        foreach (var (method, path) in new[] { (HttpMethod.Get, ""), (HttpMethod.Get, "/contacts"), (HttpMethod.Delete, "") })
        {
            using var merged = await anna.SendAsync(new HttpRequestMessage(method, $"/api/customers/{gone}{path}"));
            using var missing = await anna.SendAsync(new HttpRequestMessage(method, $"/api/customers/{nobody}{path}"));
            var text = await merged.Content.ReadAsStringAsync();
            Assert.True(merged.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)merged.StatusCode} {text}");
            Assert.DoesNotContain(kept, text, StringComparison.Ordinal);
            Assert.Null(merged.Headers.Location);
            var a = await ApiTestHost.AssertProblemAsync(merged, 404);
            var b = await ApiTestHost.AssertProblemAsync(missing, 404);
            Assert.Equal(b.GetProperty("detail").GetString()!.Replace(nobody, "ID", StringComparison.Ordinal),
                a.GetProperty("detail").GetString()!.Replace(gone, "ID", StringComparison.Ordinal));
        }
    }
}

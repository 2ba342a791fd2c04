using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using static CrmEngine.Host.Tests.SecurityHttpTests;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Depths, shares, assignment and export over real HTTP, where the role matrix (<see cref="SecurityHttpTests"/>) has one
/// record position: customers owned by the caller, a teammate, a unit colleague without a team, a user of a child unit,
/// a user of another unit, a team, and nobody, read (one by one and listed) by every depth the shipped roles use; a
/// share that reaches further and is taken back; owner changes that need <c>assign</c>; and the CSV export, which holds
/// exactly the customers the caller's <c>export</c> depth reaches. Expectations come from the depth table of
/// docs/security.md, not from the code.
/// </summary>
public sealed class SecurityDepthTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    // Record positions: the owner each customer is created with (admin creates them all).
    private static readonly string[] Positions = ["ann", "tom", "uma", "nils", "sam", "team:desk", "nobody"];

    // Callers: user id -> (role, unit, teams).
    private static readonly (string User, string Role, string Unit, string[] Teams)[] Callers =
    [
        ("ann", "salesperson", "sales", ["desk"]),
        ("tom", "salesperson", "sales", ["desk"]),
        ("uma", "salesperson", "sales", []),
        ("nils", "salesperson", "sales-north", []),
        ("sam", "salesperson", "service", []),
        ("mgr", "sales-manager", "sales", []),
        ("svm", "service-manager", "sales", []),
        ("agent", "service-agent", "sales", []),
        ("mkt", "marketing", "marketing", []),
    ];

    /// <summary>customer:read per caller, from the shipped depths (own includes the caller's teams' records; unit and below includes sales-north).</summary>
    private static readonly Dictionary<string, string[]> Reads = new()
    {
        ["ann"] = ["ann", "team:desk"],
        ["tom"] = ["tom", "team:desk"],
        ["uma"] = ["uma"],
        ["nils"] = ["nils"],
        ["sam"] = ["sam"],
        ["mgr"] = ["ann", "tom", "uma", "nils", "team:desk"],          // unitAndBelow of sales
        ["svm"] = ["ann", "tom", "uma", "nils", "team:desk"],          // unitAndBelow of sales
        ["agent"] = ["ann", "tom", "uma", "team:desk"],                // unit sales, not the child unit
        ["mkt"] = Positions,                                             // all, unowned included
    };

    /// <summary>customer:export per caller: salespeople and service agents have none (403), the others their depth.</summary>
    private static readonly Dictionary<string, string[]?> Exports = new()
    {
        ["ann"] = null,
        ["agent"] = null,
        ["mgr"] = ["ann", "tom", "uma", "nils", "team:desk"],          // unitAndBelow
        ["svm"] = ["ann", "tom", "uma", "team:desk"],                  // unit
        ["mkt"] = Positions,                                             // all
    };

    [Fact]
    public async Task Depths_shares_assignment_and_export_reach_exactly_the_documented_records()
    {
        using var root = new TestRoot();
        var seed = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(CrmProcess.HostOutput, "security.json")),
            documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!.AsObject();
        seed["units"]!.AsArray().Add(JsonNode.Parse("""{ "id": "sales-north", "name": "Sales north", "parent": "sales" }"""));
        seed["teams"] = JsonNode.Parse("""[ { "id": "desk", "name": "Desk", "unit": "sales" } ]""");
        foreach (var (user, role, unit, teams) in Callers)
        {
            seed["users"]!.AsArray().Add(new JsonObject
            {
                ["id"] = user, ["name"] = "User " + user, ["unit"] = unit, ["roles"] = new JsonArray(role),
                ["teams"] = new JsonArray(teams.Select(t => (JsonNode)t).ToArray()),
            });
        }

        var seedFile = root.File_("security-depth.json");
        await File.WriteAllTextAsync(seedFile, seed.ToJsonString());
        var (code, text) = await CrmProcess.RunAsync(root.Path, null, "security", "seed", seedFile);
        Assert.True(code == 0, text);

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = Bound };
        using (await ApiHostTests.EventuallyAsync(() => http.GetAsync("health"), r => r.StatusCode == HttpStatusCode.OK, "GET /health → 200"))
        {
        }

        // Every caller gets an admin-scope key: the scope only narrows, so a salesperson's admin key is still a salesperson.
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var user in Callers.Select(c => c.User).Append("admin"))
        {
            (code, text) = await CrmProcess.RunAsync(root.Path, null, "apikeys", "create", "--name", "key-" + user, "--scope", "admin", "--user", user);
            Assert.True(code == 0, text);
            keys[user] = ApiHostTests.ParseKey(text);
        }

        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var position in Positions)
        {
            using var created = await Send(http, HttpMethod.Post, "api/customers", keys["admin"],
                new { name = "Depth " + position, owner = position == "nobody" ? null : position, tags = new[] { "depth" } });
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, body);
            ids[position] = JsonNode.Parse(body)!["id"]!.GetValue<string>();
        }

        var positionOf = ids.ToDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal);
        var failures = new List<string>();

        // Reads: one by one (200 or the same 404 as for an unknown id) and listed (exactly the reachable ones).
        foreach (var (user, expected) in Reads)
        {
            foreach (var position in Positions)
            {
                using var response = await Send(http, HttpMethod.Get, $"api/customers/{ids[position]}", keys[user]);
                var may = expected.Contains(position);
                if ((response.StatusCode == HttpStatusCode.OK) != may || (!may && response.StatusCode != HttpStatusCode.NotFound))
                {
                    failures.Add($"{user} GET customer owned by {position}: {(int)response.StatusCode}, expected {(may ? 200 : 404)}");
                }
            }

            var listed = await ListedAsync(http, keys[user]);
            var listedPositions = listed.Select(id => positionOf.GetValueOrDefault(id, "?" + id)).Order(StringComparer.Ordinal).ToList();
            var expectedList = expected.Order(StringComparer.Ordinal).ToList();
            if (!listedPositions.SequenceEqual(expectedList))
            {
                failures.Add($"{user} list ?tag=depth: [{string.Join(", ", listedPositions)}], expected [{string.Join(", ", expectedList)}]");
            }
        }

        // Export: exactly the customers of the caller's export depth; none at all is a 403 naming customer:export.
        foreach (var (user, expected) in Exports)
        {
            using var response = await Send(http, HttpMethod.Get, "api/customers/export", keys[user]);
            var body = await response.Content.ReadAsStringAsync();
            if (expected is null)
            {
                if (response.StatusCode != HttpStatusCode.Forbidden || !body.Contains("customer:export", StringComparison.Ordinal))
                {
                    failures.Add($"{user} export: {(int)response.StatusCode} {body}, expected 403 naming customer:export");
                }

                continue;
            }

            var exported = Positions.Where(p => body.Contains(ids[p], StringComparison.Ordinal)).ToList();
            if (response.StatusCode != HttpStatusCode.OK || !exported.Order(StringComparer.Ordinal).SequenceEqual(expected.Order(StringComparer.Ordinal)))
            {
                failures.Add($"{user} export: {(int)response.StatusCode} [{string.Join(", ", exported)}], expected [{string.Join(", ", expected)}]");
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));

        // A share reaches further, for the privileges shared only; unsharing takes it back.
        var samsCustomer = ids["sam"];
        await ExpectAsync(http, HttpMethod.Put, $"api/security/shares/customer/{samsCustomer}/user:ann", keys["admin"], new { privileges = new[] { "read" } }, HttpStatusCode.OK, HttpStatusCode.Created, HttpStatusCode.NoContent);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{samsCustomer}", keys["ann"], null, HttpStatusCode.OK);
        Assert.Contains(samsCustomer, await ListedAsync(http, keys["ann"]));
        var refused = await ExpectAsync(http, HttpMethod.Patch, $"api/customers/{samsCustomer}", keys["ann"], new { name = "Ann was here" }, await VersionAsync(http, keys["admin"], samsCustomer), HttpStatusCode.Forbidden);
        Assert.Contains("customer:write", refused, StringComparison.Ordinal);
        await ExpectAsync(http, HttpMethod.Put, $"api/security/shares/customer/{samsCustomer}/team:desk", keys["admin"], new { privileges = new[] { "read", "write" } }, HttpStatusCode.OK, HttpStatusCode.Created, HttpStatusCode.NoContent);
        await ExpectAsync(http, HttpMethod.Patch, $"api/customers/{samsCustomer}", keys["tom"], new { name = "Shared with the desk" }, await VersionAsync(http, keys["admin"], samsCustomer), HttpStatusCode.OK);
        await ExpectAsync(http, HttpMethod.Delete, $"api/security/shares/customer/{samsCustomer}/user:ann", keys["admin"], null, HttpStatusCode.OK, HttpStatusCode.NoContent);
        await ExpectAsync(http, HttpMethod.Delete, $"api/security/shares/customer/{samsCustomer}/team:desk", keys["admin"], null, HttpStatusCode.OK, HttpStatusCode.NoContent);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{samsCustomer}", keys["ann"], null, HttpStatusCode.NotFound);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{samsCustomer}", keys["tom"], null, HttpStatusCode.NotFound);
        Assert.DoesNotContain(samsCustomer, await ListedAsync(http, keys["ann"]));

        // Assignment: a salesperson gives away her own customer (assign:own) and loses it; a service manager who may write
        // the customer but holds no assign is refused naming customer:assign and nothing changes; the sales manager
        // reassigns a customer of the child unit.
        await ExpectAsync(http, HttpMethod.Patch, $"api/customers/{ids["ann"]}", keys["ann"], new { owner = "uma" }, await VersionAsync(http, keys["admin"], ids["ann"]), HttpStatusCode.OK);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{ids["ann"]}", keys["ann"], null, HttpStatusCode.NotFound);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{ids["ann"]}", keys["uma"], null, HttpStatusCode.OK);
        var tomsVersion = await VersionAsync(http, keys["admin"], ids["tom"]);
        refused = await ExpectAsync(http, HttpMethod.Patch, $"api/customers/{ids["tom"]}", keys["svm"], new { owner = "uma" }, tomsVersion, HttpStatusCode.Forbidden);
        Assert.Contains("customer:assign", refused, StringComparison.Ordinal);
        Assert.Equal(tomsVersion, await VersionAsync(http, keys["admin"], ids["tom"]));
        await ExpectAsync(http, HttpMethod.Patch, $"api/customers/{ids["nils"]}", keys["mgr"], new { owner = "tom" }, await VersionAsync(http, keys["admin"], ids["nils"]), HttpStatusCode.OK);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{ids["nils"]}", keys["tom"], null, HttpStatusCode.OK);
        await ExpectAsync(http, HttpMethod.Get, $"api/customers/{ids["nils"]}", keys["nils"], null, HttpStatusCode.NotFound);

        // The change feed lists a consent entry only to callers who may read its customer (consent:read:all alone is not
        // enough): sam's customer's entry is in sam's and marketing's feed, not in ann's, though ann reads every consent.
        string consentId;
        using (var consent = await Send(http, HttpMethod.Post, $"api/customers/{ids["sam"]}/consents", keys["admin"],
                   new { purpose = "newsletter", channel = "Email", granted = true, source = "depth test" }))
        {
            var body = await consent.Content.ReadAsStringAsync();
            Assert.True(consent.StatusCode == HttpStatusCode.Created, body);
            consentId = JsonNode.Parse(body)!["id"]!.GetValue<string>();
        }

        foreach (var (user, sees) in new[] { ("sam", true), ("mkt", true), ("admin", true), ("ann", false), ("mgr", false) })
        {
            var feed = await FeedIdsAsync(http, keys[user]);
            Assert.True(feed.Contains(consentId) == sees, $"{user}: the consent entry of sam's customer {(sees ? "missing from" : "listed in")} /api/changes");
        }

        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(Bound));
    }

    /// <summary>Ids of the customers tagged <c>depth</c> the key's user sees, through every page.</summary>
    private static async Task<List<string>> ListedAsync(HttpClient http, string key)
    {
        var ids = new List<string>();
        string? path = "api/customers?tag=depth&limit=2";
        while (path is not null)
        {
            using var response = await Send(http, HttpMethod.Get, path, key);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}");
            var page = JsonNode.Parse(body)!;
            ids.AddRange(page["items"]!.AsArray().Select(i => i!["id"]!.GetValue<string>()));
            path = page["next"]?.GetValue<string>() is { } next ? Relative(next) : null;
        }

        return ids;
    }

    /// <summary>Ids of every change the key's user sees in the feed, walked to its end.</summary>
    private static async Task<HashSet<string>> FeedIdsAsync(HttpClient http, string key)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        long since = 0;
        while (true)
        {
            using var response = await Send(http, HttpMethod.Get, $"api/changes?since={since}&limit=500", key);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET api/changes: {(int)response.StatusCode} {body}");
            var page = JsonNode.Parse(body)!;
            var changes = page["changes"]!.AsArray();
            ids.UnionWith(changes.Select(c => c!["id"]!.GetValue<string>()));
            if (page["more"]?.GetValue<bool>() != true)
            {
                return ids;
            }

            since = page["next"]!.GetValue<long>();
        }
    }

    private static string Relative(string next)
    {
        var uri = new Uri(next, UriKind.RelativeOrAbsolute);
        return (uri.IsAbsoluteUri ? uri.PathAndQuery : next).TrimStart('/');
    }

    private static async Task<long> VersionAsync(HttpClient http, string adminKey, string id)
    {
        using var response = await Send(http, HttpMethod.Get, $"api/customers/{id}", adminKey);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!["version"]!.GetValue<long>();
    }

    private static Task<string> ExpectAsync(HttpClient http, HttpMethod method, string path, string key, object? body, params HttpStatusCode[] statuses) =>
        ExpectAsync(http, method, path, key, body, null, statuses);

    private static async Task<string> ExpectAsync(HttpClient http, HttpMethod method, string path, string key, object? body, long? ifMatch, params HttpStatusCode[] statuses)
    {
        using var response = await Send(http, method, path, key, body, ifMatch);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(statuses.Contains(response.StatusCode), $"{method} {path}: {(int)response.StatusCode} {text}, expected {string.Join(" or ", statuses.Select(s => (int)s))}");
        return text;
    }
}

using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Issue #9, review findings 3, 4, 5 and 11 over real HTTP against the <c>crm</c> process: Anna (salesperson) probes Bob's
/// customer (hidden overdue amount, ERP id, e-mail, phone) through import (also dry runs), the duplicate check on create,
/// duplicate scans and the customer id of a new activity or order, and learns nothing she could not learn about an id
/// nobody has; the administrator, who may read it, is told.
/// </summary>
public sealed class SecurityImportTests(ITestOutputHelper output)
{
    private const string RivalPhone = "+49 30 1234567";

    [Fact]
    public async Task A_salesperson_learns_nothing_about_anothers_customer_through_import_duplicates_scans_or_new_records()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna", "--unit", "sales", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "bob", "--name", "Bob", "--unit", "sales", "--role", "salesperson")).Code);
        string bobs = "", a1 = "", a2 = "", a3 = "";
        await root.WithStoreAsync(async store =>
        {
            bobs = (await store.Customers.CreateAsync(new Customer
            {
                Name = "Rival Holding GmbH", Owner = "bob", OverdueAmount = 4711.5m, Emails = ["ceo@rival.example"], Phones = [RivalPhone],
                ExternalIds = { ["erp"] = "K-99812" },
            })).Id;
            a1 = (await store.Customers.CreateAsync(new Customer { Name = "Anna Eins", Owner = "anna", Phones = ["+49 40 555"] })).Id;
            a2 = (await store.Customers.CreateAsync(new Customer { Name = "Anna Zwei", Owner = "anna", Phones = ["+49 40 555"] })).Id;
            a3 = (await store.Customers.CreateAsync(new Customer { Name = "Anna Drei", Owner = "anna", Phones = [RivalPhone] })).Id;
        });
        var keys = new Dictionary<string, string>();
        foreach (var user in new[] { "anna", "admin" })
        {
            var (code, text) = await Crm(root, "apikeys", "create", "--name", user + "-key", "--scope", "admin", "--user", user);
            Assert.True(code == 0, text);
            keys[user] = ApiHostTests.ParseKey(text);
        }

        var secrets = new[] { bobs, "Rival", "4711.5", "K-99812", "bob" };
        using (var crm = CrmProcess.Start(root.Path, output, "run"))
        {
            await crm.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = TimeSpan.FromMinutes(2) };

            // ---- 3. Import: a right and a wrong guess of Bob's hidden amount, and of her own, read alike (dry run and not).
            foreach (var dry in new[] { "true", "false" })
            {
                var answers = new List<string>();
                foreach (var row in new[] { $"{bobs},100", $"{bobs},4711.5", $"{a1},0" })
                {
                    var summary = await ImportAsync(http, keys["anna"], "id,overdueAmount\n" + row + "\n", dry);
                    Assert.Equal(0, summary["unchanged"]!.GetValue<long>());
                    Assert.Equal(1, summary["rejected"]!.GetValue<long>());
                    answers.Add(summary["rejects"]!.ToJsonString());
                }

                Assert.Single(answers.Distinct());
                Assert.Contains("customer.overdueAmount:write", answers[0], StringComparison.Ordinal);
            }

            // Bob's id, an id nobody has, his e-mail and his ERP id: one neutral reason, nothing created.
            var reasons = new List<string>();
            foreach (var csv in new[] { $"id,name\n{bobs},Probe\n", "id,name\n01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,Probe\n", "name,emails\nProbe,ceo@rival.example\n", "name,externalId.erp\nProbe,K-99812\n" })
            {
                var summary = await ImportAsync(http, keys["anna"], csv, "false");
                Assert.Equal(0, summary["created"]!.GetValue<long>() + summary["updated"]!.GetValue<long>() + summary["unchanged"]!.GetValue<long>());
                reasons.Add(summary["rejects"]![0]!["reason"]!.GetValue<string>());
            }

            var reason = Assert.Single(reasons.Distinct());
            Assert.Contains("customer:write", reason, StringComparison.Ordinal);
            AssertNone(secrets, reason);

            // ---- 4. Duplicate check on create: Anna is blocked without a name or id; the administrator is told which.
            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/customers", keys["anna"], new { name = "probe", emails = new[] { "ceo@rival.example" } }))
            {
                var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.UnprocessableEntity);
                Assert.Contains("may not read (same e-mail)", problem.ToJsonString(), StringComparison.Ordinal);
                AssertNone(secrets, problem.ToJsonString());
            }

            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/customers", keys["admin"], new { name = "probe", emails = new[] { "ceo@rival.example" } }))
            {
                var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.UnprocessableEntity);
                Assert.Contains($"duplicate of customer {bobs} 'Rival Holding GmbH'",
                    problem.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }), StringComparison.Ordinal);
            }

            // Bob's phone is also Anna Drei's: the mark names hers only.
            string probe;
            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/customers", keys["anna"], new { name = "phone probe", phones = new[] { RivalPhone } }))
            {
                var body = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.Created, body);
                Assert.Contains($"\"{a3}\"", JsonNode.Parse(body)!["custom"]!["possibleDuplicateOf"]!.ToJsonString(), StringComparison.Ordinal);
                probe = JsonNode.Parse(body)!["id"]!.GetValue<string>();
                AssertNone(secrets, body);
            }

            // ---- 11. An activity or order for Bob's customer is answered exactly as for an id nobody has.
            const string Unknown = "01bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
            foreach (var (path, body) in new (string, Func<string, object>)[]
            {
                ("api/activities", id => new { customerId = id }),
                ("api/orders", id => new { customerId = id, currency = "XX" }),
            })
            {
                using var hidden = await ApiHostTests.SendAsync(http, HttpMethod.Post, path, keys["anna"], body(bobs));
                using var unknown = await ApiHostTests.SendAsync(http, HttpMethod.Post, path, keys["anna"], body(Unknown));
                var hiddenText = (await hidden.Content.ReadAsStringAsync()).Replace(bobs, "ID", StringComparison.Ordinal);
                var unknownText = (await unknown.Content.ReadAsStringAsync()).Replace(Unknown, "ID", StringComparison.Ordinal);
                Assert.Equal(unknown.StatusCode, hidden.StatusCode);
                Assert.Equal(HttpStatusCode.UnprocessableEntity, hidden.StatusCode);
                Assert.Equal(Normalise(unknownText), Normalise(hiddenText));
                Assert.True(JsonNode.Parse(unknownText)!["errors"]!.AsArray().Count >= 2, unknownText); // the rest of the body is validated too
            }

            // ---- 5. Duplicate scans: Anna may not start one; the administrator's result, read by Anna, holds her group only.
            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/duplicates/scans", keys["anna"]))
            {
                var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.Forbidden);
                Assert.Equal("customer:export", problem["missingPrivilege"]!.GetValue<string>());
            }

            string scan;
            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, "api/duplicates/scans", keys["admin"]))
            {
                var body = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.Accepted, body);
                scan = JsonNode.Parse(body)!["id"]!.GetValue<string>();
            }

            // Wait for the stored outcome (generous deadline), then the administrator sees Bob's customer in a group.
            var until = DateTime.UtcNow.AddSeconds(60);
            string whole;
            while (true)
            {
                using var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/duplicates/scans/{scan}", keys["admin"]);
                whole = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.OK, whole);
                if (JsonNode.Parse(whole)!["status"]!.GetValue<string>() != "running" || DateTime.UtcNow > until)
                {
                    break;
                }

                await Task.Delay(200);
            }

            Assert.Equal("done", JsonNode.Parse(whole)!["status"]!.GetValue<string>());
            Assert.Contains(bobs, whole, StringComparison.Ordinal);

            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/duplicates/scans/{scan}", keys["anna"]))
            {
                var body = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.OK, body);
                var members = JsonNode.Parse(body)!["result"]!["members"]!.AsArray();
                // Her groups: Eins + Zwei (phone), Drei + the phone probe (Bob's customer, the third of that group, left out).
                Assert.Equal(new[] { a1, a2, a3, probe }.Order(StringComparer.Ordinal), members.Select(m => m!["customerId"]!.GetValue<string>()).Order(StringComparer.Ordinal));
                Assert.Equal(2, JsonNode.Parse(body)!["result"]!["groups"]!.GetValue<int>());
                AssertNone(secrets, body);
            }

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        }

        await root.WithStoreAsync(async store =>
        {
            var all = await store.Customers.ListAsync(100);
            Assert.DoesNotContain(all, c => c.Name == "Probe" || c.Name == "probe");
            // (The sample plugin's welcome activity of the phone probe is the only activity.)
            Assert.Empty(await store.Activities.FindAsync(IndexedField.CustomerId, bobs));
            Assert.DoesNotContain(await store.Activities.ListAsync(100), a => a.CustomerId.StartsWith("unknown-", StringComparison.Ordinal));
            Assert.Equal(0, await store.Orders.CountAsync());
            Assert.Equal(4711.5m, all.Single(c => c.Id == bobs).OverdueAmount);
        });
    }

    private static async Task<JsonNode> ImportAsync(HttpClient http, string key, string csv, string dryRun)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/customers/import?dryRun={dryRun}");
        request.Headers.Add("X-Api-Key", key);
        request.Content = new StringContent(csv, Encoding.UTF8, "text/csv");
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!;
    }

    /// <summary>A problem without what differs per request (trace id, instance).</summary>
    private static string Normalise(string problem)
    {
        var node = JsonNode.Parse(problem)!.AsObject();
        node.Remove("traceId");
        node.Remove("instance");
        return node.ToJsonString();
    }

    private static void AssertNone(IEnumerable<string> secrets, string text)
    {
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}

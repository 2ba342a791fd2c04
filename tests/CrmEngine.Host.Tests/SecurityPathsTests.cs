using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using Xunit.Abstractions;

namespace CrmEngine.Host.Tests;

/// <summary>
/// Issue #9 through the real <c>crm</c> process (engine stopped, so each verb runs the engine in-process): a salesperson of
/// another team gets nothing through export, merge, erase, rule dry runs, <c>segments explain</c> and template previews and
/// leaves the store as it was; permitted users succeed, and fields hidden from them are absent.
/// </summary>
public sealed class SecurityPathsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_hostile_salesperson_gets_nothing_and_changes_nothing_permitted_users_succeed_without_hidden_fields()
    {
        using var root = new TestRoot();
        await SeedNorthAndSouthAsync(root);
        Assert.Equal(0, (await Crm(root, "users", "create", "max", "--name", "Max", "--unit", "north", "--role", "marketing")).Code);

        string a1 = "", a2 = "", b1 = "", b2 = "";
        await root.WithStoreAsync(async store =>
        {
            a1 = (await store.Customers.CreateAsync(new Customer { Name = "Anna One", Owner = "anna", CreditLevel = "A1", OverdueAmount = 4711.37m, Emails = ["one@anna.example"] })).Id;
            a2 = (await store.Customers.CreateAsync(new Customer { Name = "Anna Two", Owner = "anna", CreditLevel = "A2" })).Id;
            b1 = (await store.Customers.CreateAsync(new Customer { Name = "Ben One", Owner = "ben", CreditLevel = "B1", OverdueAmount = 815.37m })).Id;
            b2 = (await store.Customers.CreateAsync(new Customer { Name = "Ben Two", Owner = "ben" })).Id;
        });
        Directory.CreateDirectory(root.File_("rules/segments"));
        await File.WriteAllTextAsync(root.File_("rules/segments/owing.js"), "// @description owes money\nreturn customer.overdueAmount > 100;\n");
        await File.WriteAllTextAsync(root.File_("probe.js"), "log('overdue', customer.overdueAmount, 'credit', customer.creditLevel);\nreturn customer.overdueAmount === undefined;\n");
        Directory.CreateDirectory(root.File_("templates"));
        await File.WriteAllTextAsync(root.File_("templates/probe.subject.txt"), "For {{ customer.name }}");
        await File.WriteAllTextAsync(root.File_("templates/probe.html"), "<p>overdue=[{{ customer.overdue_amount }}] credit=[{{ customer.credit_level }}]</p>");
        await File.WriteAllTextAsync(root.File_("templates/probe.txt"), "overdue=[{{ customer.overdue_amount }}] credit=[{{ customer.credit_level }}]");
        var before = await StoreTextAsync(root);

        // ---- Anna (salesperson, north) against Ben's customers: nothing, and nothing changes.
        var (code, text) = await Crm(root, "customers", "merge", a1, b1, "--as", "anna");
        Assert.Equal(1, code);
        Assert.Contains($"customer {b1} (to remove) does not exist", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "customers", "merge", b1, a1, "--as", "anna");
        Assert.Contains($"customer {b1} (to keep) does not exist", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "customers", "erase", b1, "--reason", "hostile", "--as", "anna");
        Assert.Equal(1, code);
        Assert.Contains($"customer {b1} does not exist", text, StringComparison.Ordinal);
        // Her own customers: she may write but not delete (salesperson), so no merge and no erase either.
        (code, text) = await Crm(root, "customers", "merge", a1, a2, "--as", "anna");
        Assert.Equal(1, code);
        Assert.Contains("denied (customer:delete)", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "export", "customers", root.File_("anna.csv"), "--as", "anna");
        Assert.Equal(1, code);
        Assert.Contains("denied (customer:export)", text, StringComparison.Ordinal);
        Assert.False(File.Exists(root.File_("anna.csv")));
        (code, text) = await Crm(root, "customers", "export", b1, root.File_("b1.json"), "--as", "anna");
        Assert.Equal(1, code);
        Assert.False(File.Exists(root.File_("b1.json")));
        (code, text) = await Crm(root, "rules", "test", "probe.js", "--customer", b1, "--as", "anna");
        Assert.Contains($"there is no customer '{b1}'", text, StringComparison.Ordinal);
        Assert.DoesNotContain("815.37", text, StringComparison.Ordinal);
        Assert.DoesNotContain("B1", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "segments", "explain", "owing", b1, "--as", "anna");
        Assert.NotEqual(0, code);
        Assert.Contains($"There is no customer '{b1}' that user 'anna' may read", text, StringComparison.Ordinal);
        Assert.DoesNotContain("815.37", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "templates", "preview", "probe", "--customer", b1, "--as", "anna", "--out", root.File_("preview-b1"));
        Assert.Equal(1, code);
        Assert.Contains($"no customer with id '{b1}'", text, StringComparison.Ordinal);
        Assert.False(Directory.Exists(root.File_("preview-b1")));
        (code, text) = await Crm(root, "customers", "erase", b1, "--reason", "x", "--as", "nobody");
        Assert.Contains("--as 'nobody': there is no such user", text, StringComparison.Ordinal);
        Assert.Equal(before, await StoreTextAsync(root));

        // ---- Anna on her own customer: the script and the template see creditLevel (she may read it), never overdueAmount.
        (code, text) = await Crm(root, "rules", "test", "probe.js", "--customer", a1, "--as", "anna");
        Assert.True(code == 0, text);
        Assert.Contains("A1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("4711.37", text, StringComparison.Ordinal);
        Assert.Contains("true", text, StringComparison.Ordinal); // overdueAmount is absent (undefined), not 0
        (code, text) = await Crm(root, "rules", "test", "probe.js", "--customer", a1);
        Assert.Contains("4711", text, StringComparison.Ordinal); // the machine operator sees it
        (code, text) = await Crm(root, "segments", "explain", "owing", a1, "--as", "anna");
        Assert.True(code == 0, text);
        Assert.DoesNotContain("4711.37", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "segments", "explain", "owing", a1);
        Assert.Contains("4711", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "templates", "preview", "probe", "--customer", a1, "--as", "anna", "--out", root.File_("preview-a1"));
        Assert.True(code == 0, text);
        Assert.Contains("hidden: ", text, StringComparison.Ordinal);
        Assert.Equal("overdue=[] credit=[A1]", (await File.ReadAllTextAsync(root.File_("preview-a1/body.txt"))).Trim());
        (code, text) = await Crm(root, "templates", "preview", "probe", "--customer", a1, "--out", root.File_("preview-op"));
        Assert.Equal("overdue=[4711.37] credit=[A1]", (await File.ReadAllTextAsync(root.File_("preview-op/body.txt"))).Trim());

        // ---- Mia (sales manager, north): exports her unit's customers only, every field.
        (code, text) = await Crm(root, "export", "customers", root.File_("mia.csv"), "--as", "mia");
        Assert.True(code == 0, text);
        Assert.Contains("2 customers written", text, StringComparison.Ordinal);
        var miaCsv = await File.ReadAllTextAsync(root.File_("mia.csv"));
        Assert.Contains("Anna One", miaCsv, StringComparison.Ordinal);
        Assert.Contains("4711", miaCsv, StringComparison.Ordinal);
        Assert.DoesNotContain("Ben One", miaCsv, StringComparison.Ordinal);

        // ---- Max (marketing: export all, no protected field): every customer, without any protected column.
        (code, text) = await Crm(root, "export", "customers", root.File_("max.csv"), "--as", "max");
        Assert.True(code == 0, text);
        Assert.Contains("4 customers written", text, StringComparison.Ordinal);
        var csv = await File.ReadAllTextAsync(root.File_("max.csv"));
        var header = csv.Split('\n')[0];
        Assert.Contains("Ben One", csv, StringComparison.Ordinal);
        foreach (var hidden in new[] { "creditLevel", "creditLimit", "overdueAmount", "blacklisted", "paymentTerms" })
        {
            Assert.DoesNotContain(hidden, header, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("4711.37", csv, StringComparison.Ordinal);
        (code, text) = await Crm(root, "export", "customers", root.File_("all.csv"));
        Assert.Contains("4 customers written", text, StringComparison.Ordinal);
        Assert.Contains("overdueAmount", (await File.ReadAllTextAsync(root.File_("all.csv"))).Split('\n')[0], StringComparison.Ordinal);

        // ---- The administrator (shipped user admin) merges and erases; the erase also scrubs the mail outbox.
        (code, text) = await Crm(root, "customers", "merge", b1, b2, "--as", "admin");
        Assert.True(code == 0, text);
        Assert.Contains($"merged customer {b2} into {b1}", text, StringComparison.Ordinal);
        (code, text) = await Crm(root, "customers", "erase", b1, "--reason", "GDPR-1", "--as", "admin");
        Assert.True(code == 0, text);
        Assert.Contains($"erased customer {b1}", text, StringComparison.Ordinal);
        Assert.Contains("mail: 0 waiting messages suppressed, 0 messages scrubbed", text, StringComparison.Ordinal);
        await root.WithStoreAsync(async store =>
        {
            Assert.Null(await store.Customers.GetAsync(b2));
            Assert.Equal("[erased]", (await store.Customers.GetAsync(b1))!.Name);
            var audit = await store.Audit.ForEntityAsync(EntityNames.Customer, b1);
            Assert.Equal("erase:admin", audit[^1].Actor);
        });
    }

    [Fact]
    public async Task An_import_as_a_salesperson_creates_their_customers_and_cannot_touch_others_or_protected_fields()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna", "--unit", "sales", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "ben", "--name", "Ben", "--unit", "sales", "--role", "salesperson")).Code);
        string b1 = "";
        await root.WithStoreAsync(async store => b1 = (await store.Customers.CreateAsync(new Customer { Name = "Ben One", Owner = "ben", Emails = ["ben1@example.com"] })).Id);
        var before = await StoreTextAsync(root);

        // Row 2 updates Ben's card (matched by id), row 3 gives a new card to Ben, row 4 sets a field she may not write.
        await File.WriteAllTextAsync(root.File_("in.csv"),
            "id,name,owner,emails,overdueAmount\n" +
            $"{b1},Taken over,,,\n" +
            ",Gift for Ben,ben,gift@example.com,\n" +
            ",Owing,,owing@example.com,999\n" +
            ",Fresh,,fresh@example.com,\n");
        var (code, text) = await Crm(root, "import", "customers", "in.csv", "--as", "anna");
        var rejects = await File.ReadAllTextAsync(root.File_("in.csv.rejects.csv"));
        output.WriteLine(rejects);
        Assert.True(code == 0, text);
        Assert.Contains("1 created", text, StringComparison.Ordinal);
        Assert.Contains("3 rejected", text, StringComparison.Ordinal);
        Assert.Contains("customer:write", rejects, StringComparison.Ordinal);
        Assert.Contains("customer:create", rejects, StringComparison.Ordinal);
        Assert.Contains("customer.overdueAmount:write", rejects, StringComparison.Ordinal);
        Assert.DoesNotContain("ben1@example.com", rejects, StringComparison.Ordinal);
        await root.WithStoreAsync(async store =>
        {
            Assert.Equal("Ben One", (await store.Customers.GetAsync(b1))!.Name);
            var all = await store.Customers.ListAsync(100);
            Assert.Equal(2, all.Count);
            var fresh = Assert.Single(all, c => c.Name == "Fresh");
            Assert.Equal("anna", fresh.Owner);
            Assert.Equal("import:anna", (await store.Audit.ForEntityAsync(EntityNames.Customer, fresh.Id))[0].Actor);
        });
        Assert.NotEqual(before, await StoreTextAsync(root));
    }

    [Fact]
    public async Task Over_the_api_a_users_key_exports_merges_erases_and_reads_only_what_the_user_may()
    {
        using var root = new TestRoot();
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "units", "create", "north", "--name", "North", "--parent", "sales")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna", "--unit", "north", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "ben", "--name", "Ben", "--unit", "sales", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "mia", "--name", "Mia", "--unit", "north", "--role", "sales-manager")).Code);
        string a1 = "", b1 = "", b2 = "";
        await root.WithStoreAsync(async store =>
        {
            a1 = (await store.Customers.CreateAsync(new Customer { Name = "Anna One", Owner = "anna", OverdueAmount = 4711.37m })).Id;
            b1 = (await store.Customers.CreateAsync(new Customer { Name = "Ben One", Owner = "ben", OverdueAmount = 815.37m })).Id;
            b2 = (await store.Customers.CreateAsync(new Customer { Name = "Ben Two", Owner = "ben" })).Id;
        });
        var keys = new Dictionary<string, string>();
        foreach (var user in new[] { "anna", "mia", "admin" })
        {
            var (code, text) = await Crm(root, "apikeys", "create", "--name", user + "-admin", "--scope", "admin", "--user", user);
            Assert.True(code == 0, text);
            keys[user] = ApiHostTests.ParseKey(text);
        }

        using var crm = CrmProcess.Start(root.Path, output, "run");
        await crm.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = TimeSpan.FromMinutes(2) };
        async Task<string> CardAsync(string id)
        {
            using var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/customers/{id}", keys["admin"]);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            return await r.Content.ReadAsStringAsync();
        }

        var before = await CardAsync(b1) + await CardAsync(b2) + await CardAsync(a1);

        // Anna: 403 naming the privilege where she may know the record, 404 where she may not even read it.
        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/customers/export", keys["anna"]))
        {
            var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.Forbidden);
            Assert.Equal("customer:export", problem["missingPrivilege"]!.GetValue<string>());
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, $"api/customers/{a1}/merge", keys["anna"], new { remove = b1, force = true }))
        {
            var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.NotFound);
            Assert.DoesNotContain("815.37", problem.ToJsonString(), StringComparison.Ordinal);
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, $"api/customers/{b1}/erase", keys["anna"], new { reason = "hostile" }))
        {
            await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.NotFound);
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, $"api/customers/{b1}/export", keys["anna"]))
        {
            await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.NotFound);
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, $"api/customers/{a1}/erase", keys["anna"], new { reason = "own" }))
        {
            var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.Forbidden);
            Assert.Equal("customer:delete", problem["missingPrivilege"]!.GetValue<string>());
        }

        Assert.Equal(before, await CardAsync(b1) + await CardAsync(b2) + await CardAsync(a1));

        // Mia (sales manager, north): her unit's customers only.
        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Get, "api/customers/export", keys["mia"]))
        {
            var csv = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, csv);
            Assert.Contains("Anna One", csv, StringComparison.Ordinal);
            Assert.DoesNotContain("Ben One", csv, StringComparison.Ordinal);
        }

        // The administrator merges and erases.
        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, $"api/customers/{b1}/merge", keys["admin"], new { remove = b2, force = false }))
        {
            Assert.True(r.StatusCode == HttpStatusCode.OK, await r.Content.ReadAsStringAsync());
        }

        using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, $"api/customers/{b1}/erase", keys["admin"], new { reason = "GDPR-2" }))
        {
            var body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, body);
            Assert.Contains("mail:", JsonNode.Parse(body)!["elsewhere"]!.ToJsonString(), StringComparison.Ordinal);
        }

        Assert.Contains("[erased]", await CardAsync(b1), StringComparison.Ordinal);
        crm.Signal(CrmProcess.SIGTERM);
        Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(2)));
    }

    [Fact]
    public async Task A_merge_that_would_move_another_units_activity_is_refused_by_crm_as_and_the_api_and_changes_nothing()
    {
        using var root = new TestRoot();
        await SeedNorthAndSouthAsync(root);
        string a1 = "", a2 = "", bens = "";
        await root.WithStoreAsync(async store =>
        {
            a1 = (await store.Customers.CreateAsync(new Customer { Name = "Anna One", Owner = "anna" })).Id;
            a2 = (await store.Customers.CreateAsync(new Customer { Name = "Anna One Dup", Owner = "anna" })).Id;
            // Ben (another unit) logged a visit on Anna's customer: Mia may not rewrite it.
            bens = (await store.Activities.CreateAsync(new Activity { CustomerId = a2, Subject = "Ben's visit", Owner = "ben" })).Id;
        });
        var before = await StoreTextAsync(root);

        await AssertMiaRefusedAsync(root, before, ["customers", "merge", a1, a2], $"api/customers/{a1}/merge", new { remove = a2, force = false },
            $"activity {bens} of customer {a2}");

        // The administrator may write every record: the merge goes through and Ben's visit moves with the customer.
        var (code, text) = await Crm(root, "customers", "merge", a1, a2, "--as", "admin");
        Assert.True(code == 0, text);
        Assert.Contains("1 activities", text, StringComparison.Ordinal);
        await root.WithStoreAsync(async store => Assert.Equal(a1, (await store.Activities.GetAsync(bens))!.CustomerId));
    }

    [Fact]
    public async Task An_erase_that_would_clear_another_units_activity_is_refused_by_crm_as_and_the_api_and_changes_nothing()
    {
        using var root = new TestRoot();
        await SeedNorthAndSouthAsync(root);
        string a1 = "", bens = "";
        await root.WithStoreAsync(async store =>
        {
            a1 = (await store.Customers.CreateAsync(new Customer { Name = "Anna One", Owner = "anna", Emails = ["one@anna.example"] })).Id;
            // Ben (another unit) logged a visit on Anna's customer: Mia may delete the customer but not rewrite Ben's visit.
            bens = (await store.Activities.CreateAsync(new Activity { CustomerId = a1, Subject = "Ben's visit", Body = "BEN-NOTE", Owner = "ben" })).Id;
        });
        var before = await StoreTextAsync(root);

        await AssertMiaRefusedAsync(root, before, ["customers", "erase", a1, "--reason", "GDPR"], $"api/customers/{a1}/erase", new { reason = "GDPR" },
            $"activity {bens} of customer {a1}");

        // The administrator may write every record: the erase goes through and Ben's visit loses its text.
        var (code, text) = await Crm(root, "customers", "erase", a1, "--reason", "GDPR", "--as", "admin");
        Assert.True(code == 0, text);
        Assert.Contains("1 activities", text, StringComparison.Ordinal);
        await root.WithStoreAsync(async store =>
        {
            Assert.Equal("[erased]", (await store.Customers.GetAsync(a1))!.Name);
            Assert.Null((await store.Activities.GetAsync(bens))!.Body);
        });
    }

    /// <summary>
    /// Mia (sales manager, north) runs the verb with <c>--as mia</c> and then POSTs the same operation with her admin-scope key
    /// over real HTTP: both are refused with <c>activity:write</c> naming <paramref name="record"/>, and the store is unchanged.
    /// </summary>
    private async Task AssertMiaRefusedAsync(TestRoot root, string before, string[] verb, string path, object body, string record)
    {
        var (code, text) = await Crm(root, [.. verb, "--as", "mia"]);
        Assert.Equal(1, code);
        Assert.Contains("denied (activity:write)", text, StringComparison.Ordinal);
        Assert.Contains(record, text, StringComparison.Ordinal);
        Assert.Equal(before, await StoreTextAsync(root));

        (code, text) = await Crm(root, "apikeys", "create", "--name", "mia-" + verb[1], "--scope", "admin", "--user", "mia");
        Assert.True(code == 0, text);
        var key = ApiHostTests.ParseKey(text);
        using (var crm = CrmProcess.Start(root.Path, output, "run"))
        {
            await crm.WaitForReadyAsync();
            using var http = new HttpClient { BaseAddress = root.ApiBase, Timeout = TimeSpan.FromMinutes(2) };
            using (var r = await ApiHostTests.SendAsync(http, HttpMethod.Post, path, key, body))
            {
                var problem = await ApiHostTests.AssertProblemAsync(r, HttpStatusCode.Forbidden);
                Assert.Equal("activity:write", problem["missingPrivilege"]!.GetValue<string>());
                Assert.Contains(record, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            }

            crm.Signal(CrmProcess.SIGTERM);
            Assert.Equal(0, await crm.WaitForExitAsync(TimeSpan.FromMinutes(2)));
        }

        Assert.Equal(before, await StoreTextAsync(root));
    }

    /// <summary>The shipped roles, units north and south under sales, salespeople anna (north) and ben (south), sales manager mia (north).</summary>
    private async Task SeedNorthAndSouthAsync(TestRoot root)
    {
        Assert.Equal(0, (await Crm(root, "security", "seed")).Code);
        Assert.Equal(0, (await Crm(root, "units", "create", "north", "--name", "North", "--parent", "sales")).Code);
        Assert.Equal(0, (await Crm(root, "units", "create", "south", "--name", "South", "--parent", "sales")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "anna", "--name", "Anna", "--unit", "north", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "ben", "--name", "Ben", "--unit", "south", "--role", "salesperson")).Code);
        Assert.Equal(0, (await Crm(root, "users", "create", "mia", "--name", "Mia", "--unit", "north", "--role", "sales-manager")).Code);
    }

    /// <summary>Every customer with its version, as text, to compare the store before and after.</summary>
    private static async Task<string> StoreTextAsync(TestRoot root)
    {
        var text = "";
        await root.WithStoreAsync(async store =>
        {
            var all = await store.Customers.ListAsync(1000);
            text = string.Join("\n", all.Select(c => JsonSerializer.Serialize(c)));
            text += "\nactivities:" + JsonSerializer.Serialize(await store.Activities.ListAsync(1000)) + " orders:" + (await store.Orders.CountAsync());
        });
        return text;
    }

    private Task<(int Code, string Text)> Crm(TestRoot root, params string[] args) => CrmProcess.RunAsync(root.Path, output, args);
}

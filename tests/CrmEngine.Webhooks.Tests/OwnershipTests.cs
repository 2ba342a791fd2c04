using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Security;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Webhooks.Tests;

/// <summary>
/// Webhook management belongs to the caller (issue #9, review findings 1 and 7), over real HTTP with a real receiver:
/// another user's subscription is a 404 on every endpoint and never listed, an update cannot change the subscription's
/// user, an administrator (security: write at all) manages every subscription; a redelivery is judged again as the
/// subscription's user; consent entries reach only subscribers who may read the entry's customer.
/// </summary>
public class OwnershipTests
{
    private const string Seed = """
        {
          "protectedFields": { "customer": ["creditLevel", "overdueAmount"] },
          "units": [ { "id": "org", "name": "Org" }, { "id": "north", "name": "North", "parent": "org" }, { "id": "south", "name": "South", "parent": "org" } ],
          "roles": [
            { "id": "rep", "name": "Rep", "privileges": { "customer": "create:own read:own write:own", "consent": "create:all read:all" } },
            { "id": "credit", "name": "Credit reader", "privileges": {}, "fields": { "customer.creditLevel": "read" } },
            { "id": "boss", "name": "Boss", "privileges": { "customer": "read:all", "consent": "read:all" }, "fields": { "customer.*": "read" } },
            { "id": "administrator", "name": "Administrator", "privileges": { "*": "create:all read:all write:all delete:all" }, "fields": { "*.*": "read write" } }
          ],
          "users": [
            { "id": "anna", "name": "Anna", "unit": "north", "roles": ["rep", "credit"] },
            { "id": "ben", "name": "Ben", "unit": "south", "roles": ["rep"] },
            { "id": "carla", "name": "Carla", "unit": "org", "roles": ["boss"] },
            { "id": "dora", "name": "Dora", "unit": "org", "roles": ["administrator"] }
          ]
        }
        """;

    private static async Task<TestEngine> StartSeededAsync()
    {
        var engine = await TestEngine.StartAsync(security: true);
        await engine.Services.GetRequiredService<SecurityAdministration>().SeedAsync(SeedFile.Parse(Seed, "seed.json"), "test");
        return engine;
    }

    private static async Task<(HttpStatusCode Status, string Body)> CallAsync(TestEngine engine, string key, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Api-Key", key);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType());
        }

        using var response = await engine.Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<string> SubscribeAsAsync(TestEngine engine, string user, string url, string events = "customer.*")
    {
        var (status, text) = await CallAsync(engine, "user:" + user, HttpMethod.Post, "/api/webhooks", new { url, events = new[] { events } });
        Assert.True(status == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<List<JsonElement>> HistoryAsync(TestEngine engine, string key, string subscription)
    {
        var (status, text) = await CallAsync(engine, key, HttpMethod.Get, $"/api/webhooks/{subscription}/deliveries");
        Assert.True(status == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("items").EnumerateArray().ToList();
    }

    [Fact]
    public async Task Another_users_subscription_is_a_404_everywhere_its_user_never_changes_and_an_administrator_manages_all()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = (_, _) => Task.FromResult((503, "down"));
        await using var engine = await StartSeededAsync();
        var annas = await SubscribeAsAsync(engine, "anna", receiver.Url("/anna"));
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Anna's client", Owner = "anna" });
        List<JsonElement> parked = [];
        await Eventually.WaitAsync(async () => (parked = (await HistoryAsync(engine, "user:anna", annas)).Where(d => d.GetProperty("state").GetString() == "parked").ToList()).Count > 0,
            "anna's delivery is parked", explain: () => engine.Logs.Errors);
        var parkedId = parked[0].GetProperty("id").GetString()!;

        // Ben (an ordinary user with an admin-scope key) finds nothing of anna's: not listed, and the same 404 as an unknown id.
        var (status, text) = await CallAsync(engine, "user:ben", HttpMethod.Get, "/api/webhooks");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain(annas, text, StringComparison.Ordinal);
        var unknown = (await CallAsync(engine, "user:ben", HttpMethod.Get, "/api/webhooks/wh_nobody")).Body.Replace("wh_nobody", annas, StringComparison.Ordinal);
        var attempts = new (HttpMethod Method, string Path, object? Body)[]
        {
            (HttpMethod.Get, $"/api/webhooks/{annas}", null),
            (HttpMethod.Patch, $"/api/webhooks/{annas}", new { url = "http://127.0.0.1:9/steal", secret = "stolen-secret-0123456789" }),
            (HttpMethod.Delete, $"/api/webhooks/{annas}", null),
            (HttpMethod.Post, $"/api/webhooks/{annas}/ping", null),
            (HttpMethod.Get, $"/api/webhooks/{annas}/deliveries", null),
            (HttpMethod.Get, $"/api/webhooks/{annas}/deliveries/{parkedId}", null),
            (HttpMethod.Post, $"/api/webhooks/{annas}/deliveries/{parkedId}/retry", null),
        };
        foreach (var key in new[] { "user:ben", TestEngine.AdminKey })
        {
            foreach (var (method, path, body) in attempts)
            {
                (status, text) = await CallAsync(engine, key, method, path, body);
                Assert.True(status == HttpStatusCode.NotFound, $"{key} {method} {path}: {(int)status} {text}");
                Assert.DoesNotContain(parkedId, text, StringComparison.Ordinal);
                if (path == $"/api/webhooks/{annas}")
                {
                    Assert.Equal(JsonDocument.Parse(unknown).RootElement.GetProperty("detail").GetString(), JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString());
                }
            }
        }

        // Nothing changed: still anna's URL, still parked, nothing sent anywhere else.
        (status, text) = await CallAsync(engine, "user:anna", HttpMethod.Get, $"/api/webhooks/{annas}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(receiver.Url("/anna"), JsonDocument.Parse(text).RootElement.GetProperty("url").GetString());
        Assert.Equal("parked", (await HistoryAsync(engine, "user:anna", annas)).Single(d => d.GetProperty("id").GetString() == parkedId).GetProperty("state").GetString());

        // The user is not a field an update can set, not even by the owner.
        (status, text) = await CallAsync(engine, "user:anna", HttpMethod.Patch, $"/api/webhooks/{annas}", new { user = "ben" });
        Assert.True(status == HttpStatusCode.BadRequest, text);
        Assert.Contains("user", text, StringComparison.Ordinal);

        // An administrator sees and manages it; the subscription keeps receiving as anna.
        (status, text) = await CallAsync(engine, "user:dora", HttpMethod.Get, "/api/webhooks");
        Assert.Contains(annas, text, StringComparison.Ordinal);
        (status, text) = await CallAsync(engine, "user:dora", HttpMethod.Patch, $"/api/webhooks/{annas}", new { description = "checked by dora" });
        Assert.True(status == HttpStatusCode.OK, text);
        Assert.Equal("anna", JsonDocument.Parse(text).RootElement.GetProperty("user").GetString());
        (status, text) = await CallAsync(engine, "user:anna", HttpMethod.Delete, $"/api/webhooks/{annas}");
        Assert.True(status == HttpStatusCode.NoContent, text);
    }

    [Fact]
    public async Task A_redelivery_is_judged_again_as_the_subscriptions_user_now()
    {
        await using var receiver = await Receiver.StartAsync();
        var down = true;
        receiver.Respond = (_, _) => Task.FromResult(Volatile.Read(ref down) ? (503, "down") : (200, "ok"));
        await using var engine = await StartSeededAsync();
        var annas = await SubscribeAsAsync(engine, "anna", receiver.Url("/anna"));
        var moved = await engine.Store.Customers.CreateAsync(new Customer { Name = "Moves to Ben", Owner = "anna" });
        var kept = await engine.Store.Customers.CreateAsync(new Customer { Name = "Stays", Owner = "anna", CreditLevel = "A-SECRET" });
        await Eventually.WaitAsync(async () => (await HistoryAsync(engine, "user:anna", annas)).Count(d => d.GetProperty("state").GetString() == "parked") == 2,
            "both deliveries are parked", explain: () => engine.Logs.Errors);
        var history = await HistoryAsync(engine, "user:anna", annas);
        string DeliveryOf(string id) => history.Single(d => d.GetProperty("entityId").GetString() == id).GetProperty("id").GetString()!;
        Assert.Contains(receiver.Requests, r => r.Path == "/anna" && r.Body.AsSpan().IndexOf("A-SECRET"u8) >= 0);

        // The customer now belongs to ben, and anna no longer reads credit levels.
        moved.Owner = "ben";
        await engine.Store.Customers.UpdateAsync(moved);
        await engine.Services.GetRequiredService<SecurityAdministration>().RemoveUserRoleAsync("anna", "credit", "test");
        Volatile.Write(ref down, false);
        var sentBefore = receiver.Requests.Count(r => r.DeliveryId == DeliveryOf(moved.Id));

        var (status, text) = await CallAsync(engine, "user:anna", HttpMethod.Post, $"/api/webhooks/{annas}/deliveries/{DeliveryOf(moved.Id)}/retry");
        Assert.True(status == HttpStatusCode.Conflict, text);
        Assert.Contains($"may no longer read customer '{moved.Id}'", text, StringComparison.Ordinal);
        var skipped = (await HistoryAsync(engine, "user:anna", annas)).Single(d => d.GetProperty("id").GetString() == DeliveryOf(moved.Id));
        Assert.Equal("skipped", skipped.GetProperty("state").GetString());

        (status, text) = await CallAsync(engine, "user:anna", HttpMethod.Post, $"/api/webhooks/{annas}/deliveries/{DeliveryOf(kept.Id)}/retry");
        Assert.True(status == HttpStatusCode.Accepted, text);
        var resent = DeliveryOf(kept.Id);
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.DeliveryId == resent), "the delivery anna may still receive goes out", explain: () => engine.Logs.Errors);
        var data = receiver.Delivered.First(r => r.DeliveryId == resent).Json.GetProperty("data");
        Assert.Equal("Stays", data.GetProperty("name").GetString());
        Assert.False(data.TryGetProperty("creditLevel", out _), data.GetRawText());

        // The refused one never went again (skipped at once, so no later send can happen).
        Assert.Equal(sentBefore, receiver.Requests.Count(r => r.DeliveryId == DeliveryOf(moved.Id)));
        Assert.DoesNotContain(receiver.Delivered, r => r.DeliveryId == DeliveryOf(moved.Id));
    }

    [Fact]
    public async Task Consent_entries_reach_only_subscribers_who_may_read_the_customer()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await StartSeededAsync();
        var annas = await SubscribeAsAsync(engine, "anna", receiver.Url("/anna"), "consent.*");
        await SubscribeAsAsync(engine, "carla", receiver.Url("/carla"), "consent.*");

        var bensCustomer = await engine.Store.Customers.CreateAsync(new Customer { Name = "Ben's client", Owner = "ben" });
        var annasCustomer = await engine.Store.Customers.CreateAsync(new Customer { Name = "Anna's client", Owner = "anna" });
        var bensEntry = await engine.Store.Consents.CreateAsync(new ConsentEntry
        {
            CustomerId = bensCustomer.Id, Purpose = "newsletter", Channel = ConsentChannel.Email, Granted = true, Source = "fair", At = DateTimeOffset.UtcNow,
        });
        var annasEntry = await engine.Store.Consents.CreateAsync(new ConsentEntry
        {
            CustomerId = annasCustomer.Id, Purpose = "newsletter", Channel = ConsentChannel.Email, Granted = true, Source = "fair", At = DateTimeOffset.UtcNow,
        });

        // One subscription's deliveries go in change order: once anna's (later) entry arrived, ben's went before it or never.
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/anna" && r.Json.GetProperty("entityId").GetString() == annasEntry.Id),
            "anna receives the entry of her customer", explain: () => engine.Logs.Errors);
        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/carla") == 2, "carla (reads every customer) receives both",
            explain: () => engine.Logs.Errors);
        Assert.DoesNotContain(receiver.Requests, r => r.Path == "/anna" && r.Json.GetProperty("entityId").GetString() == bensEntry.Id);
        Assert.DoesNotContain(receiver.Requests, r => r.Path == "/anna" && r.Body.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(bensCustomer.Id)) >= 0);
        var history = await HistoryAsync(engine, "user:anna", annas);
        Assert.Equal([annasEntry.Id], history.Select(d => d.GetProperty("entityId").GetString()));
    }
}

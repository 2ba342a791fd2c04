using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Webhooks.Tests;

/// <summary>
/// Record access on webhooks (issue #9), over real HTTP with a real receiver: a subscription receives as the user who
/// made it; changes of records that user may not read never leave the engine, hidden fields are absent from data, and a
/// deactivated subscriber gets nothing (skipped, with the reason in the history).
/// </summary>
public class AccessTests
{
    private const string Seed = """
        {
          "protectedFields": { "customer": ["creditLevel", "overdueAmount"] },
          "units": [ { "id": "org", "name": "Org" }, { "id": "north", "name": "North", "parent": "org" }, { "id": "south", "name": "South", "parent": "org" } ],
          "roles": [
            { "id": "rep", "name": "Rep", "privileges": { "customer": "create:own read:own write:own" } },
            { "id": "boss", "name": "Boss", "privileges": { "customer": "read:all" }, "fields": { "customer.*": "read" } },
            { "id": "administrator", "name": "Administrator", "privileges": { "*": "read:all write:all" } }
          ],
          "users": [
            { "id": "anna", "name": "Anna", "unit": "north", "roles": ["rep"] },
            { "id": "ben", "name": "Ben", "unit": "south", "roles": ["rep"] },
            { "id": "carla", "name": "Carla", "unit": "org", "roles": ["boss"] },
            { "id": "dora", "name": "Dora", "unit": "org", "roles": ["administrator"] }
          ]
        }
        """;

    /// <summary>Reads every subscription's history: a user who may administer security (ben's own key stops when he leaves).</summary>
    private const string Administrator = "user:dora";

    private static async Task<TestEngine> StartSeededAsync(string seed = Seed, Action<IServiceCollection>? services = null)
    {
        var engine = await TestEngine.StartAsync(security: true, services: services);
        var admin = engine.Services.GetRequiredService<SecurityAdministration>();
        await admin.SeedAsync(SeedFile.Parse(seed, "seed.json"), "test");
        return engine;
    }

    private static async Task<string> SubscribeAsAsync(TestEngine engine, string user, string url, string events = "customer.*")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/webhooks") { Content = JsonContent.Create(new { url, events = new[] { events } }) };
        request.Headers.Add("X-Api-Key", "user:" + user);
        using var response = await engine.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        var body = JsonDocument.Parse(text).RootElement;
        Assert.Equal(user, body.GetProperty("user").GetString());
        return body.GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task A_subscriber_gets_only_records_they_may_read_without_hidden_fields_and_a_deactivated_one_gets_nothing()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await StartSeededAsync();
        var annaSub = await SubscribeAsAsync(engine, "anna", receiver.Url("/anna"));
        var benSub = await SubscribeAsAsync(engine, "ben", receiver.Url("/ben"));
        var carlaSub = await SubscribeAsAsync(engine, "carla", receiver.Url("/carla"));

        var annas = await engine.Store.Customers.CreateAsync(new Customer { Name = "Anna's client", Owner = "anna", CreditLevel = "A-SECRET", OverdueAmount = 4711 });
        var bens = await engine.Store.Customers.CreateAsync(new Customer { Name = "Ben's client", Owner = "ben", CreditLevel = "B-SECRET" });
        await engine.Store.Customers.DeleteAsync(annas.Id);

        // Each subscription's deliveries go in change order, so once the later change has arrived the earlier ones
        // were either delivered before it or never made.
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/ben" && r.Json.GetProperty("entityId").GetString() == bens.Id),
            "ben receives his own customer", explain: () => engine.Logs.Errors);
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/anna" && r.Event == "customer.deleted"),
            "anna receives the delete of her customer", explain: () => engine.Logs.Errors);
        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/carla") == 3, "carla (read all) receives all three changes",
            explain: () => engine.Logs.Errors);

        var toAnna = receiver.Delivered.Where(r => r.Path == "/anna").ToList();
        Assert.Equal(["customer.created", "customer.deleted"], toAnna.Select(r => r.Event));
        Assert.All(toAnna, r => Assert.Equal(annas.Id, r.Json.GetProperty("entityId").GetString()));
        var annaData = toAnna[0].Json.GetProperty("data");
        Assert.Equal("Anna's client", annaData.GetProperty("name").GetString());
        Assert.False(annaData.TryGetProperty("creditLevel", out _), annaData.GetRawText());
        Assert.False(annaData.TryGetProperty("overdueAmount", out _), annaData.GetRawText());
        Assert.DoesNotContain("A-SECRET", string.Concat(receiver.Requests.Where(r => r.Path != "/carla").Select(r => System.Text.Encoding.UTF8.GetString(r.Body))), StringComparison.Ordinal);

        var toBen = receiver.Delivered.Where(r => r.Path == "/ben").ToList();
        Assert.Equal([bens.Id], toBen.Select(r => r.Json.GetProperty("entityId").GetString()));
        Assert.DoesNotContain(await engine.DeliveriesAsync(benSub, Administrator), d => d.GetProperty("entityId").GetString() == annas.Id);

        // The boss may read every field: the value is there.
        var toCarla = receiver.Delivered.Where(r => r.Path == "/carla").ToList();
        Assert.Equal("A-SECRET", toCarla[0].Json.GetProperty("data").GetProperty("creditLevel").GetString());

        // Ben leaves: his subscription stays, but it receives nothing more; the history says why.
        await engine.Services.GetRequiredService<SecurityAdministration>().DeactivateUserAsync("ben", "test", DateTimeOffset.UtcNow);
        var later = await engine.Store.Customers.CreateAsync(new Customer { Name = "After Ben left", Owner = "ben" });
        await Eventually.WaitAsync(async () => (await engine.DeliveriesAsync(benSub, Administrator)).Any(d => d.GetProperty("entityId").GetString() == later.Id),
            "the change is recorded for ben's subscription");
        var skipped = (await engine.DeliveriesAsync(benSub, Administrator)).Single(d => d.GetProperty("entityId").GetString() == later.Id);
        Assert.Equal("skipped", skipped.GetProperty("state").GetString());
        Assert.Contains("user 'ben' is deactivated", skipped.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, skipped.GetProperty("attempts").GetInt32());
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/carla" && r.Json.GetProperty("entityId").GetString() == later.Id),
            "carla still receives");
        Assert.DoesNotContain(receiver.Requests, r => r.Path == "/ben" && r.Json.GetProperty("entityId").GetString() == later.Id);
        Assert.DoesNotContain(await engine.DeliveriesAsync(annaSub, Administrator), d => d.GetProperty("entityId").GetString() == later.Id);
    }

    /// <summary>A plugin's record: its owner is in the field the plugin declared (accountManager), not in <c>Owner</c>.</summary>
    private sealed class Partner : Entity
    {
        public string Name { get; set; } = "";
        public string? AccountManager { get; set; }
        public string? Iban { get; set; }
    }

    /// <summary>What the plugin host hands the access model after a plugin called <c>IPluginBuilder.DeclareEntity</c>.</summary>
    private sealed class Declarations(params EntityDeclaration[] declared) : IEntityDeclarationSource
    {
        public IReadOnlyCollection<EntityDeclaration> EntityDeclarations => declared;
    }

    [Fact]
    public async Task Plugin_entity_changes_go_to_the_user_of_the_declared_owner_field_without_its_protected_fields()
    {
        const string partner = "acme_partner";
        var seed = $$"""
            {
              "units": [ { "id": "org", "name": "Org" }, { "id": "north", "name": "North", "parent": "org" }, { "id": "south", "name": "South", "parent": "org" } ],
              "roles": [
                { "id": "desk", "name": "Partner desk", "privileges": { "{{partner}}": "read:own write:own" } },
                { "id": "boss", "name": "Boss", "privileges": { "{{partner}}": "read:all" }, "fields": { "{{partner}}.*": "read" } }
              ],
              "users": [
                { "id": "anna", "name": "Anna", "unit": "north", "roles": ["desk"] },
                { "id": "ben", "name": "Ben", "unit": "south", "roles": ["desk"] },
                { "id": "carla", "name": "Carla", "unit": "org", "roles": ["boss"] }
              ]
            }
            """;
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await StartSeededAsync(seed,
            services => services.AddSingleton<IEntityDeclarationSource>(new Declarations(new EntityDeclaration("acme", partner, "accountManager", ["iban"]))));
        await SubscribeAsAsync(engine, "anna", receiver.Url("/anna"), partner + ".*");
        await SubscribeAsAsync(engine, "carla", receiver.Url("/carla"), partner + ".*");

        var partners = engine.Services.GetRequiredService<IStoreProvider>().ForActor("plugin:acme", "acme").Collection<Partner>("partner");
        var bens = await partners.CreateAsync(new Partner { Name = "Ben's partner", AccountManager = "ben", Iban = "DE-BEN" });
        var annas = await partners.CreateAsync(new Partner { Name = "Anna's partner", AccountManager = "anna", Iban = "DE-ANNA" });

        // Deliveries of one subscription go in change order: once anna's (later) partner arrived, ben's was sent before it or never.
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/anna" && r.Json.GetProperty("entityId").GetString() == annas.Id),
            "anna receives the partner she manages", explain: () => engine.Logs.Errors);
        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/carla") == 2, "carla (read all) receives both",
            explain: () => engine.Logs.Errors);

        var toAnna = Assert.Single(receiver.Delivered, r => r.Path == "/anna");
        Assert.Equal(partner + ".created", toAnna.Event);
        var data = toAnna.Json.GetProperty("data");
        Assert.Equal("Anna's partner", data.GetProperty("name").GetString());
        Assert.False(data.TryGetProperty("iban", out _), data.GetRawText());
        Assert.DoesNotContain(receiver.Requests, r => r.Path == "/anna" && r.Json.GetProperty("entityId").GetString() == bens.Id);
        var carlas = receiver.Delivered.Where(r => r.Path == "/carla").ToDictionary(r => r.Json.GetProperty("entityId").GetString()!);
        Assert.Equal("DE-BEN", carlas[bens.Id].Json.GetProperty("data").GetProperty("iban").GetString());
    }

    [Fact]
    public async Task A_subscription_without_a_user_acts_as_sys_api_and_receives_everything_when_the_model_has_no_sys_api()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await StartSeededAsync();
        var (id, _) = await engine.SubscribeAsync(receiver.Url("/legacy"), "customer.*");
        Assert.Equal(JsonValueKind.Null, (await engine.GetJsonAsync($"/api/webhooks/{id}")).GetProperty("user").ValueKind);
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Anyone's", Owner = "ben", CreditLevel = "C" });
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/legacy"), "the legacy subscription receives", explain: () => engine.Logs.Errors);
        Assert.Equal("C", receiver.Delivered.First(r => r.Path == "/legacy").Json.GetProperty("data").GetProperty("creditLevel").GetString());
    }

    [Fact]
    public async Task The_command_lines_as_user_must_exist_and_be_active_and_is_kept_on_the_subscription()
    {
        await using var engine = await StartSeededAsync();
        var admin = engine.Services.GetRequiredService<WebhookAdministration>();
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => admin.CreateAsync("https://example.com/h", ["customer.*"], null, "cli", "nobody"));
        Assert.Contains("--as 'nobody': there is no such user", unknown.Message, StringComparison.Ordinal);
        await engine.Services.GetRequiredService<SecurityAdministration>().DeactivateUserAsync("ben", "test", DateTimeOffset.UtcNow);
        var gone = await Assert.ThrowsAsync<ArgumentException>(() => admin.CreateAsync("https://example.com/h", ["customer.*"], null, "cli", "ben"));
        Assert.Contains("--as 'ben': the user is deactivated", gone.Message, StringComparison.Ordinal);
        Assert.Empty(admin.List());

        var (created, _) = await admin.CreateAsync("https://example.com/h", ["customer.*"], null, "cli", "anna");
        Assert.Equal("anna", created.User);
        Assert.Equal("anna", Assert.Single(admin.List()).User);
    }
}

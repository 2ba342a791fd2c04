using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Core;
using CrmEngine.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.PluginHost.Tests;

/// <summary>
/// A plugin declares its entity through the SDK (<c>IPluginBuilder.DeclareEntity</c>) and the access model covers its
/// records like a core entity: roles name it, the evaluator reads the owner from the declared field, and the protected
/// field is hidden from a user whose roles give no field privilege. The real core, plugin host and access model.
/// </summary>
public sealed class EntityDeclarationTests : IDisposable
{
    private const string Partner = "fixture.secured_partner";
    private readonly PluginFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    private IHost BuildHost(Dictionary<string, string?> settings) =>
        _folders.BuildRealHost(settings, (services, _) => services.AddCrmSecurity());

    [Fact]
    public async Task Declared_plugin_entity_is_checked_by_owner_field_and_its_protected_field_is_masked()
    {
        _folders.AddBuilt("Fixture.SecuredEntity");
        using var host = BuildHost([]);
        var admin = host.Services.GetRequiredService<SecurityAdministration>();
        // The model is read before the plugin starts (as the API would), so the declaration must refresh it.
        Assert.Empty((await admin.Directory.SnapshotAsync()).DeclaredEntities);
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<PluginManager>();
        Assert.Equal(PluginState.Active, manager.Find("fixture.secured")!.State);

        var seed = Path.Combine(_folders.Root, "security.json");
        File.WriteAllText(seed, $$"""
            {
              "units": [ { "id": "org", "name": "Organisation" } ],
              "roles": [
                { "id": "partner-desk", "name": "Partner desk", "privileges": { "{{Partner}}": "read:own write:own" } },
                { "id": "partner-boss", "name": "Partner boss", "privileges": { "{{Partner}}": "read:all" }, "fields": { "{{Partner}}.*": "read" } }
              ],
              "users": [
                { "id": "admin", "name": "Admin", "unit": "org" },
                { "id": "anna", "name": "Anna", "unit": "org", "roles": ["partner-desk"] },
                { "id": "ben", "name": "Ben", "unit": "org", "roles": ["partner-desk"] },
                { "id": "boss", "name": "Boss", "unit": "org", "roles": ["partner-boss"] }
              ]
            }
            """);
        await admin.SeedAsync(SeedFile.Load(seed), "admin");

        var snapshot = await admin.Directory.SnapshotAsync();
        var declared = snapshot.DeclaredEntities[Partner];
        Assert.Equal(("fixture.secured", "accountManager"), (declared.PluginId, declared.OwnerField));
        Assert.Contains("iban", snapshot.ProtectedFields[Partner]);

        JsonObject Record(string owner) => new() { ["id"] = "p-" + owner, ["name"] = "Partner of " + owner, ["accountManager"] = owner, ["iban"] = "DE89370400440532013000" };
        var anna = await admin.ContextForAsync("anna");
        var bens = Record("ben");
        var ref_ = snapshot.RecordOf(Partner, "p-ben", bens);
        Assert.Equal("ben", ref_.Owner);
        var denied = anna.Check(Privilege.Read, ref_);
        Assert.False(denied.Allowed);
        Assert.Equal(Partner + ":read", denied.Missing);
        Assert.True(anna.Check(Privilege.Read, snapshot.RecordOf(Partner, "p-anna", Record("anna"))).Allowed);
        Assert.False(anna.Check(Privilege.Delete, snapshot.RecordOf(Partner, "p-anna", Record("anna"))).Allowed);

        // The protected field: hidden from anna (no field privilege), shown to boss (partner.*: read), never writable by either.
        var masked = anna.Fields(Partner).Apply(Record("anna"));
        Assert.False(masked.ContainsKey("iban"));
        Assert.Equal("Partner of anna", masked["name"]!.GetValue<string>());
        Assert.False(anna.Fields(Partner).CheckQueryField("iban").Allowed);
        var boss = await admin.ContextForAsync("boss");
        Assert.True(boss.Check(Privilege.Read, ref_).Allowed);
        Assert.Equal("DE89370400440532013000", boss.Fields(Partner).Apply(Record("ben"))["iban"]!.GetValue<string>());
        Assert.Contains("iban", boss.Fields(Partner).ReadOnly);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_plugin_cannot_declare_an_entity_that_is_not_its_own()
    {
        _folders.AddBuilt("Fixture.SecuredEntity");
        using var host = BuildHost(new() { ["Plugins:fixture.secured:DeclareForeign"] = "true" });
        await host.StartAsync();
        var plugin = host.Services.GetRequiredService<PluginManager>().Find("fixture.secured")!;
        Assert.Equal(PluginState.Malfunctioned, plugin.State);
        Assert.Contains("plugin 'fixture.secured' can declare only its own entities, named fixture.secured_<collection>", plugin.Reason, StringComparison.Ordinal);
        // What it declared before the refusal stays protected; the core entity was not touched.
        var snapshot = await host.Services.GetRequiredService<SecurityDirectory>().SnapshotAsync();
        Assert.Contains("iban", snapshot.ProtectedFields[Partner]);
        Assert.False(snapshot.DeclaredEntities.ContainsKey("customer"));
        await host.StopAsync();
    }
}

using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.PluginHost.Tests;

/// <summary>Ordering and refusal rules, on manifest-only folders (no code is loaded by the resolver).</summary>
public sealed class ResolverTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "crm-resolver-tests", Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_root, true);

    private void Plugin(string id, string version = "1.0.0", string sdkMin = "1.0.0", string sdkMax = "1", params string[] deps)
    {
        var folder = Path.Combine(_root, id);
        Directory.CreateDirectory(folder);
        var depJson = string.Join(", ", deps.Select(d =>
        {
            var parts = d.Split(' ');
            return parts.Length == 1
                ? $"{{ \"id\": \"{parts[0]}\" }}"
                : $"{{ \"id\": \"{parts[0]}\", \"min\": \"{parts[1]}\", \"max\": \"{parts[2]}\" }}";
        }));
        File.WriteAllText(Path.Combine(folder, "plugin.json"), $$"""
            { "id": "{{id}}", "version": "{{version}}", "sdk": { "min": "{{sdkMin}}", "max": "{{sdkMax}}" },
              "dependencies": [ {{depJson}} ], "entryAssembly": "P.dll" }
            """);
        File.WriteAllText(Path.Combine(folder, "P.dll"), "not loaded by the resolver");
    }

    private List<PluginCandidate> Resolve(Dictionary<string, string?>? settings = null, string sdk = "1.0.0")
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(settings ?? []).Build();
        return PluginResolver.Resolve(PluginResolver.Discover([_root]), config, SemVersion.Parse(sdk));
    }

    private static PluginCandidate Get(List<PluginCandidate> all, string id) => all.Single(c => c.Id == id);

    [Fact]
    public void Orders_plugins_so_that_dependencies_come_first()
    {
        Plugin("a.top", deps: ["c.mid", "b.base"]);
        Plugin("b.base");
        Plugin("c.mid", deps: ["b.base 1.0 1"]);
        Plugin("d.alone");

        var order = Resolve();
        Assert.All(order, c => Assert.Null(c.State));
        var ids = order.Select(c => c.Id).ToList();
        Assert.True(ids.IndexOf("b.base") < ids.IndexOf("c.mid"));
        Assert.True(ids.IndexOf("c.mid") < ids.IndexOf("a.top"));
        Assert.Equal(4, ids.Count);
    }

    [Fact]
    public void Refuses_a_cycle_naming_every_member_and_what_depends_on_it()
    {
        Plugin("x.one", deps: ["x.two"]);
        Plugin("x.two", deps: ["x.three"]);
        Plugin("x.three", deps: ["x.one"]);
        Plugin("y.user", deps: ["x.two"]);
        Plugin("z.fine");

        var all = Resolve();
        foreach (var id in new[] { "x.one", "x.two", "x.three" })
        {
            var c = Get(all, id);
            Assert.Equal(PluginState.NotSupported, c.State);
            Assert.Equal("dependency cycle: x.one -> x.two -> x.three -> x.one", c.Reason);
        }

        Assert.Equal(PluginState.NotSupported, Get(all, "y.user").State);
        Assert.Equal("dependency x.two is not active (NotSupported)", Get(all, "y.user").Reason);
        Assert.Null(Get(all, "z.fine").State);
        Assert.Equal("z.fine", all[0].Id);
    }

    [Fact]
    public void Refuses_missing_and_out_of_range_dependencies()
    {
        Plugin("base", version: "1.4.0");
        Plugin("wants.old", deps: ["base 1.0 1.3"]);
        Plugin("wants.new", deps: ["base 2.0 2"]);
        Plugin("wants.ok", deps: ["base 1.4 1"]);
        Plugin("wants.ghost", deps: ["ghost 1.0 1"]);

        var all = Resolve();
        Assert.Equal("needs base 1.0 .. 1.3 but found base 1.4.0", Get(all, "wants.old").Reason);
        Assert.Equal("needs base 2.0 .. 2 but found base 1.4.0", Get(all, "wants.new").Reason);
        Assert.Equal("dependency ghost (1.0 .. 1) is missing", Get(all, "wants.ghost").Reason);
        Assert.Null(Get(all, "wants.ok").State);
    }

    [Fact]
    public void Checks_the_sdk_range_against_the_engine_sdk()
    {
        Plugin("old.sdk", sdkMin: "0.1", sdkMax: "0");
        Plugin("now.sdk", sdkMin: "1.0", sdkMax: "1");
        var all = Resolve(sdk: "1.3.0");
        Assert.Equal("supports SDK 0.1 .. 0 but this engine has SDK 1.3.0", Get(all, "old.sdk").Reason);
        Assert.Null(Get(all, "now.sdk").State);
    }

    [Fact]
    public void Disabled_in_configuration_also_disables_dependents()
    {
        Plugin("base");
        Plugin("user", deps: ["base"]);
        var all = Resolve(new() { ["Plugins:base:Enabled"] = "false" });
        Assert.Equal(PluginState.Disabled, Get(all, "base").State);
        Assert.Equal("disabled in configuration (Plugins:base:Enabled = false)", Get(all, "base").Reason);
        Assert.Equal(PluginState.Disabled, Get(all, "user").State);
        Assert.Equal("dependency base is not active (Disabled)", Get(all, "user").Reason);
    }

    [Fact]
    public void Duplicate_ids_refuse_both_folders()
    {
        Plugin("same");
        var copy = Path.Combine(_root, "same-copy");
        Directory.CreateDirectory(copy);
        File.Copy(Path.Combine(_root, "same", "plugin.json"), Path.Combine(copy, "plugin.json"));
        var all = Resolve();
        Assert.Equal(2, all.Count(c => c.Id == "same" && c.State == PluginState.NotSupported));
        Assert.All(all, c => Assert.Contains("duplicate plugin id 'same'", c.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public void A_folder_without_manifest_or_entry_assembly_is_reported()
    {
        Directory.CreateDirectory(Path.Combine(_root, "empty"));
        Plugin("no.entry");
        File.Delete(Path.Combine(_root, "no.entry", "P.dll"));
        var all = Resolve();
        Assert.StartsWith("no plugin.json in folder", Get(all, "empty").Reason, StringComparison.Ordinal);
        Assert.StartsWith("entry assembly P.dll not found in", Get(all, "no.entry").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_enabled_value_that_is_not_a_boolean_is_refused_naming_the_key()
    {
        Plugin("base");
        var all = Resolve(new() { ["Plugins:base:Enabled"] = "nope" });
        Assert.Equal((PluginState.NotSupported, "configuration Plugins:base:Enabled = 'nope' is not true or false"),
            (Get(all, "base").State, Get(all, "base").Reason));
    }

    [Fact]
    public void In_inspect_mode_a_failed_entry_check_also_refuses_dependents()
    {
        Plugin("base");
        Plugin("user", deps: ["base"]);
        var config = new ConfigurationBuilder().Build();
        var all = PluginResolver.Resolve(PluginResolver.Discover([_root]), config, SemVersion.Parse("1.0.0"),
            c => c.Id == "base" ? "no CrmPlugin subclass in P.dll" : null);
        Assert.Equal("no CrmPlugin subclass in P.dll", Get(all, "base").Reason);
        Assert.Equal((PluginState.NotSupported, "dependency base is not active (NotSupported)"), (Get(all, "user").State, Get(all, "user").Reason));
    }
}

using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Plugins;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.PluginHost.Tests;

/// <summary>The plugin host on the real core (LiteDB store, pipeline, async deliveries) in a generic host.</summary>
public sealed class RealCoreTests : IDisposable
{
    private readonly PluginFolders _folders = new();

    public void Dispose() => _folders.Dispose();

    private IHost BuildHost(Dictionary<string, string?> settings)
    {
        settings["Pipeline:AsyncRetryBaseDelay"] = "00:00:00.010";
        return _folders.BuildRealHost(settings);
    }

    [Fact]
    public async Task The_sample_plugin_adds_a_welcome_task_to_every_new_customer_through_the_real_store()
    {
        _folders.AddBuilt("sample.welcome");
        _folders.AddBuilt("Fixture.Valid");
        using var host = BuildHost(new()
        {
            ["Plugins:sample.welcome:DueInDays"] = "5",
            ["Plugins:fixture.valid:Greeting"] = "vip",
        });
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<PluginManager>();
        Assert.All(manager.Plugins, p => Assert.Equal(PluginState.Active, p.State));
        Assert.Equal("1.0.0", host.Services.GetRequiredService<IInstalledPlugins>().GetInstalledVersion("sample.welcome"));

        var store = host.Services.GetRequiredService<IStoreProvider>().ForActor("user:test");
        var before = DateTimeOffset.UtcNow;
        var customer = await store.Customers.CreateAsync(new Customer { Name = "Acme Ltd", Owner = "rep.anna" });

        // PreOperation handler of the valid fixture changed the stored image in the same write.
        Assert.Contains("vip", customer.Tags);

        IReadOnlyList<Activity> activities = [];
        await Eventually.TrueAsync(() =>
        {
            activities = store.Activities.FindAsync(IndexedField.CustomerId, customer.Id).GetAwaiter().GetResult();
            return activities.Count > 0;
        }, "the async welcome handler ran");
        var welcome = Assert.Single(activities);
        Assert.Equal((ActivityType.Task, "Welcome", "rep.anna", "sample.welcome"), (welcome.Type, welcome.Subject, welcome.Owner, welcome.Source));
        Assert.InRange(welcome.DueAt!.Value, before.AddDays(5).AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(5).AddMinutes(1));

        // The audit log names the plugin as the author of the activity.
        var audit = await store.Audit.ForEntityAsync(EntityNames.Activity, welcome.Id);
        Assert.Contains(audit, a => a.Actor == "plugin:sample.welcome");

        await host.StopAsync();
    }

    [Fact]
    public async Task A_plugin_whose_async_handler_keeps_failing_in_the_real_pipeline_is_malfunctioned()
    {
        _folders.AddBuilt("Fixture.FaultyHandler");
        _folders.AddBuilt("sample.welcome");
        using var host = BuildHost(new()
        {
            ["PluginHost:FailureThreshold"] = "3",
            ["Pipeline:AsyncMaxAttempts"] = "20",
        });
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<PluginManager>();
        Assert.Equal(PluginState.Active, manager.Find("fixture.faulty")!.State);

        var store = host.Services.GetRequiredService<IStoreProvider>().ForActor("user:test");
        var customer = await store.Customers.CreateAsync(new Customer { Name = "Beta GmbH" });

        await Eventually.TrueAsync(() => manager.Find("fixture.faulty")!.State == PluginState.Malfunctioned, "the breaker trips");
        Assert.StartsWith("3 failures within 00:05:00; last: handler fixture.faulty:AlwaysThrowsHandler", manager.Find("fixture.faulty")!.Reason,
            StringComparison.Ordinal);

        // The engine and the other plugin go on.
        Assert.Equal(PluginState.Active, manager.Find("sample.welcome")!.State);
        await Eventually.TrueAsync(() => store.Activities.FindAsync(IndexedField.CustomerId, customer.Id).GetAwaiter().GetResult().Count == 1,
            "the welcome plugin still handles the customer");
        await host.StopAsync();
    }

    [Fact]
    public async Task A_malfunctioned_or_stopped_plugin_can_no_longer_use_the_store_it_was_handed()
    {
        _folders.AddBuilt("Fixture.FaultyHandler");
        _folders.AddBuilt("sample.welcome");
        using var host = BuildHost(new()
        {
            ["PluginHost:FailureThreshold"] = "3",
            ["Pipeline:AsyncMaxAttempts"] = "20",
        });
        await host.StartAsync();
        var manager = host.Services.GetRequiredService<PluginManager>();

        // References a plugin could keep: its context's store, and a set taken from it while active.
        var faulty = manager.ContextOf("fixture.faulty")!.Store;
        var welcomeCustomers = manager.ContextOf("sample.welcome")!.Store.Customers;
        var customer = await faulty.Customers.CreateAsync(new Customer { Name = "Beta GmbH" });
        Assert.NotNull(await welcomeCustomers.GetAsync(customer.Id));

        await Eventually.TrueAsync(() => manager.Find("fixture.faulty")!.State == PluginState.Malfunctioned, "the breaker trips");
        await Eventually.TrueAsync(() => ((RevocableCrmStore)faulty).IsRevoked, "the malfunctioned plugin's store is revoked");
        var before = await host.Services.GetRequiredService<IStoreProvider>().ForActor("user:test").Customers.CountAsync();
        var ex = await Assert.ThrowsAsync<PluginStoreRevokedException>(() => faulty.Customers.CreateAsync(new Customer { Name = "Ghost" }));
        Assert.Contains("plugin 'fixture.faulty' was revoked (the plugin is Malfunctioned: 3 failures", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<PluginStoreRevokedException>(() => faulty.Activities.ListAsync());
        await Assert.ThrowsAsync<PluginStoreRevokedException>(() => faulty.Changes.LastSequenceAsync());
        Assert.Throws<PluginStoreRevokedException>(() => faulty.Customers);
        Assert.Equal(before, await host.Services.GetRequiredService<IStoreProvider>().ForActor("user:test").Customers.CountAsync());

        // The other plugin keeps a working store while it runs; once stopped, its captured set is revoked too.
        Assert.NotNull(await welcomeCustomers.GetAsync(customer.Id));
        await host.StopAsync();
        var stopped = await Assert.ThrowsAsync<PluginStoreRevokedException>(() => welcomeCustomers.CreateAsync(new Customer { Name = "Late" }));
        Assert.Contains("plugin 'sample.welcome' was revoked (the plugin was stopped)", stopped.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_plugin_host_options_stop_start_up_naming_the_member()
    {
        using var host = BuildHost(new() { ["PluginHost:FailureThreshold"] = "0" });
        var ex = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("FailureThreshold", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bundled_plugin_folders_hold_the_manifest_and_not_the_sdk()
    {
        var folder = Path.Combine(PluginFolders.FixturesDirectory, "sample.welcome");
        Assert.True(File.Exists(Path.Combine(folder, "plugin.json")));
        Assert.True(File.Exists(Path.Combine(folder, "CrmEngine.Samples.WelcomePlugin.dll")));
        Assert.True(File.Exists(Path.Combine(folder, "CrmEngine.Samples.WelcomePlugin.deps.json")));
        Assert.False(File.Exists(Path.Combine(folder, "CrmEngine.Abstractions.dll")));
        Assert.Empty(Directory.GetFiles(folder, "Microsoft.Extensions.*.dll"));
    }
}

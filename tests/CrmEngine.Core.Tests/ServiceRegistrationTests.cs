using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmEngine.Core.Tests;

public class ServiceRegistrationTests
{
    private static IHost BuildHost(string contentRoot, Dictionary<string, string?> settings, Action<IServiceCollection>? more = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = contentRoot,
            DisableDefaults = true,
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddCrmCore(builder.Configuration);
        more?.Invoke(builder.Services);
        return builder.Build();
    }

    [Fact]
    public async Task The_host_runs_the_store_from_configuration_and_shuts_down_cleanly()
    {
        var root = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var observer = new RecordingObserver();
            var settings = new Dictionary<string, string?>
            {
                ["Store:DataDirectory"] = "state",
                ["Store:FileName"] = "engine.db",
                ["Pipeline:AsyncRetryBaseDelay"] = "00:00:00.005",
            };
            string id;
            using (var host = BuildHost(root, settings, s => s.AddSingleton<IHandlerFaultObserver>(observer)))
            {
                await host.StartAsync();
                var db = host.Services.GetRequiredService<CrmDatabase>();
                Assert.Equal(Path.Combine(root, "state", "engine.db"), db.FilePath);

                var delivered = new TaskCompletionSource<string>();
                using var _ = host.Services.GetRequiredService<IWriteHandlerRegistry>().Register(
                    HandlerRegistration.Create<Customer>("sample", EntityNames.Customer, PipelineStage.Async, 0, "sample:Welcome",
                        (e, _) =>
                        {
                            delivered.TrySetResult(e.EntityId);
                            return Task.CompletedTask;
                        }));

                var store = host.Services.GetRequiredService<IStoreProvider>().ForActor("user:admin");
                id = (await store.Customers.CreateAsync(TestEngine.NewCustomer("Hosted"))).Id;
                Assert.Equal(id, await delivered.Task.WaitAsync(TimeSpan.FromSeconds(30)));

                var installed = host.Services.GetRequiredService<IInstalledPlugins>();
                Assert.Null(installed.GetInstalledVersion("sample"));
                installed.SetInstalledVersion("sample", "1.2.0");
                Assert.Equal("1.2.0", installed.GetInstalledVersion("sample"));
                var deliveries = host.Services.GetRequiredService<IAsyncDeliveries>();
                for (var i = 0; i < 1500 && (await deliveries.ListAsync()).Count > 0; i++)
                {
                    await Task.Delay(20);
                }

                Assert.Empty(await deliveries.ListAsync());
                Assert.Contains(observer.Succeeded, s => s.Handler == "sample:Welcome");
                await host.StopAsync();
            }

            using var reopened = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, "state"), FileName = "engine.db" });
            var pipeline = new WritePipeline(reopened, new WriteHandlerRegistry(), new PipelineOptions());
            Assert.Equal("Hosted", (await new StoreProvider(pipeline).ForActor("t").Customers.GetAsync(id))!.Name);
            Assert.Equal("1.2.0", new InstalledPlugins(reopened).GetInstalledVersion("sample"));
        }
        finally
        {
            TestEngine.TryDelete(root);
        }
    }

    [Theory]
    [InlineData("Pipeline:MaxDepth", "0", "MaxDepth")]
    [InlineData("Store:FileName", "sub/dir.db", "FileName")]
    [InlineData("Pipeline:HandlerTimeout", "00:00:00", "HandlerTimeout")]
    public async Task A_bad_setting_stops_start_up_naming_the_key(string key, string value, string named)
    {
        var root = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            using var host = BuildHost(root, new Dictionary<string, string?> { [key] = value });
            var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
            Assert.Contains(named, ex.Message);
        }
        finally
        {
            TestEngine.TryDelete(root);
        }
    }
}

using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CrmEngine.DataExchange.Tests;

/// <summary>A real engine core (LiteDB file in a temp folder, pipeline, hosted services) with the data exchange on top.</summary>
public sealed class Engine : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly List<IHostedService> _hosted;

    private Engine(string folder, ServiceProvider services, List<IHostedService> hosted)
    {
        Folder = folder;
        _services = services;
        _hosted = hosted;
    }

    public string Folder { get; }

    public static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !System.IO.File.Exists(Path.Combine(dir.FullName, "CrmEngine.sln")))
        {
            dir = dir.Parent;
        }

        var root = dir?.FullName ?? throw new InvalidOperationException("repository root not found");
        return Path.Combine([root, .. parts]);
    }

    public static async Task<Engine> StartAsync(Dictionary<string, string?>? settings = null, string? folder = null)
    {
        folder ??= Path.Combine(Path.GetTempPath(), "crm-dx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var values = new Dictionary<string, string?> { ["Store:DataDirectory"] = folder };
        foreach (var (k, v) in settings ?? [])
        {
            values[k] = v;
        }

        var config = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddCrmCore(config);
        services.AddCrmDataExchange(config);
        var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        foreach (var h in hosted)
        {
            await h.StartAsync(CancellationToken.None);
        }

        return new Engine(folder, provider, hosted);
    }

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    public ICrmStore Store(string actor = "test") => Get<IStoreProvider>().ForActor(actor);

    public string File(string name) => Path.Combine(Folder, name);

    public async Task<List<Abstractions.Model.Customer>> AllCustomersAsync()
    {
        var all = new List<Abstractions.Model.Customer>();
        string? after = null;
        while (true)
        {
            var page = await Store().Customers.ListAsync(1000, after);
            all.AddRange(page);
            if (page.Count < 1000)
            {
                return all;
            }

            after = page[^1].Id;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var h in Enumerable.Reverse(_hosted))
        {
            await h.StopAsync(CancellationToken.None);
        }

        await _services.DisposeAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS to clean up.
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
/*
 * gpuswitch_test: a stand-in for the nvidia driver in the test VM.
 *
 * It drives QEMU's "edu" device (1234:11e8), one function of the emulated
 * GPU, and behaves as nvidia does where it matters to gpuswitch: each bound
 * function has a character device (/dev/gpuswitch-testN), and remove()
 * waits, uninterruptibly, until nobody uses the function any more.  So an
 * unbind written while a process holds the node blocks the writer until the
 * holder lets go.
 *
 * The "pin" parameter adds a user that no process shows (as nvidia's usage
 * count also counts users inside the kernel): with pin=1 an unbind blocks
 * although no holder can be found.
 *
 * The "fail_probe" parameter makes the next N probes fail with -EIO, as a
 * GPU that does not come up (nvidia's RmInitAdapter failing): 1 fails once
 * and then works, a large N always fails.  The tests use it in place of
 * fault injection in the daemon.
 */
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/wait.h>

static int pin;
static DECLARE_WAIT_QUEUE_HEAD(users_gone);

static int pin_set(const char *val, const struct kernel_param *kp)
{
	int r = param_set_int(val, kp);

	wake_up_all(&users_gone);
	return r;
}

static const struct kernel_param_ops pin_ops = {
	.set = pin_set,
	.get = param_get_int,
};
module_param_cb(pin, &pin_ops, &pin, 0644);
MODULE_PARM_DESC(pin, "1: an invisible user holds every device (remove() waits)");

static atomic_t fail_probe = ATOMIC_INIT(0);

static int fail_probe_set(const char *val, const struct kernel_param *kp)
{
	int n, r = kstrtoint(val, 0, &n);

	if (r)
		return r;
	if (n < 0)
		return -EINVAL;
	atomic_set(&fail_probe, n);
	return 0;
}

static int fail_probe_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&fail_probe));
}

static const struct kernel_param_ops fail_probe_ops = {
	.set = fail_probe_set,
	.get = fail_probe_get,
};
module_param_cb(fail_probe, &fail_probe_ops, NULL, 0644);
MODULE_PARM_DESC(fail_probe, "N: the next N probes fail with -EIO (1: once, then they work)");

struct gst_dev {
	struct miscdevice misc;
	atomic_t users;
	int index;
	char name[32];
};

/* As /dev/nvidiaN, the number is given back on remove: a function bound
 * again gets the same node. */
static DEFINE_IDA(gst_ida);

static int gst_open(struct inode *inode, struct file *file)
{
	struct gst_dev *d = container_of(file->private_data, struct gst_dev, misc);

	atomic_inc(&d->users);
	return 0;
}

static int gst_release(struct inode *inode, struct file *file)
{
	struct gst_dev *d = container_of(file->private_data, struct gst_dev, misc);

	if (atomic_dec_and_test(&d->users))
		wake_up_all(&users_gone);
	return 0;
}

static const struct file_operations gst_fops = {
	.owner = THIS_MODULE,
	.open = gst_open,
	.release = gst_release,
};

static int gst_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct gst_dev *d;
	int r;

	/* taken one at a time: N failures, whatever probes run at once */
	if (atomic_add_unless(&fail_probe, -1, 0)) {
		dev_warn(&pdev->dev, "gpuswitch_test: probe fails as asked (fail_probe, %d left)\n",
			 atomic_read(&fail_probe));
		return -EIO;
	}
	/* as a real driver does: the function comes to D0 (power_state) */
	r = pcim_enable_device(pdev);
	if (r)
		return r;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	r = ida_alloc(&gst_ida, GFP_KERNEL);
	if (r < 0) {
		kfree(d);
		return r;
	}
	d->index = r;
	snprintf(d->name, sizeof(d->name), "gpuswitch-test%d", d->index);
	d->misc.minor = MISC_DYNAMIC_MINOR;
	d->misc.name = d->name;
	d->misc.fops = &gst_fops;
	d->misc.parent = &pdev->dev;
	d->misc.mode = 0666;
	r = misc_register(&d->misc);
	if (r) {
		ida_free(&gst_ida, d->index);
		kfree(d);
		return r;
	}
	pci_set_drvdata(pdev, d);
	dev_info(&pdev->dev, "gpuswitch_test: /dev/%s\n", d->name);
	return 0;
}

static void gst_remove(struct pci_dev *pdev)
{
	struct gst_dev *d = pci_get_drvdata(pdev);

	/* As nvidia's remove(): wait for every user, in D state. */
	if (atomic_read(&d->users) || READ_ONCE(pin))
		dev_info(&pdev->dev, "gpuswitch_test: remove waits for %d user(s)%s\n",
			 atomic_read(&d->users), READ_ONCE(pin) ? " and the pin" : "");
	wait_event(users_gone, atomic_read(&d->users) == 0 && !READ_ONCE(pin));
	misc_deregister(&d->misc);
	ida_free(&gst_ida, d->index);
	kfree(d);
	dev_info(&pdev->dev, "gpuswitch_test: removed\n");
}

static const struct pci_device_id gst_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, gst_ids);

static struct pci_driver gst_driver = {
	.name = "gpuswitch_test",
	.id_table = gst_ids,
	.probe = gst_probe,
	.remove = gst_remove,
};
module_pci_driver(gst_driver);

MODULE_DESCRIPTION("gpuswitch's test stand-in for a driver whose remove() waits for its users");
MODULE_LICENSE("GPL");
